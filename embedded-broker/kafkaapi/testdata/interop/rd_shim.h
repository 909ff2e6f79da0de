/* Shim for the librdkafka-internal headers that rdkafka_performance.c
 * (shipped as source in Debian's librdkafka-dev) includes: only what the
 * example uses, written for bridge's interop tests. */
#ifndef BRIDGE_RD_SHIM_H
#define BRIDGE_RD_SHIM_H
#define _GNU_SOURCE
#include <stdlib.h>
#include <stdio.h>
#include <stdint.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>
#include <getopt.h>
typedef int64_t rd_ts_t;
static inline rd_ts_t rd_clock(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (rd_ts_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
#define rd_snprintf snprintf
#define RD_UNUSED __attribute__((unused))
#define RD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RD_MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

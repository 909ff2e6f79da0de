// Command sqscanned is the floor of the SQS server CPU figure: an HTTP
// server that answers the sqsload loop's calls (CreateQueue,
// SendMessageBatch, ReceiveMessage, DeleteMessageBatch, DeleteQueue) with
// canned, valid JSON 1.0 answers and keeps no queue, so the CPU it spends
// per message is what HTTP alone costs on this machine for that request
// stream. -server picks net/http or internal/leanhttp (what bridge's SQS
// listener runs). scripts/sqs-server-cpu.sh measures it beside bridge with
// SQS_CANNED=1.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/bridgeio/bridge/bench/internal/canned"
	"github.com/bridgeio/bridge/internal/leanhttp"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "listen address")
	server := flag.String("server", "lean", "HTTP server: lean (internal/leanhttp) or net/http")
	bodyBytes := flag.Int("body-bytes", 200, "message body size of the canned receive answer")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqscanned:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	h := canned.Handler(*bodyBytes)
	switch *server {
	case "lean":
		err = (&leanhttp.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, WriteTimeout: time.Minute}).Serve(ln)
	case "net/http":
		err = (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}).Serve(ln)
	default:
		err = fmt.Errorf("unknown -server %q", *server)
	}
	fmt.Fprintln(os.Stderr, "sqscanned:", err)
	os.Exit(1)
}

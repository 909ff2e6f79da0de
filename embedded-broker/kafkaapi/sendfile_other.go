//go:build !linux

package kafkaapi

import (
	"io"
	"net"
	"os"
)

// sendFile copies n bytes of f at pos to the socket (positional reads;
// sendfile(2) with an offset is used on Linux only).
func sendFile(dst *net.TCPConn, f *os.File, pos, n int64) error {
	_, err := io.Copy(dst, io.NewSectionReader(f, pos, n))
	return err
}

package kafkaapi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// sendFile copies n bytes of f at pos to the socket without passing them
// through user space. It uses sendfile(2) with an explicit offset, so the
// file's shared position is never touched (Go's TCPConn.ReadFrom would use
// and move it, racing other readers of the segment), and the runtime
// poller for EAGAIN.
func sendFile(dst *net.TCPConn, f *os.File, pos, n int64) error {
	out, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	in, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := in.Read(func(infd uintptr) bool {
		werr := out.Write(func(outfd uintptr) bool {
			for n > 0 {
				chunk := int(min(n, 1<<30))
				written, err := syscall.Sendfile(int(outfd), int(infd), &pos, chunk)
				if written > 0 {
					n -= int64(written)
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until the socket is writable
				case errors.Is(err, syscall.EINTR):
					continue
				case err != nil:
					serr = err
					return true
				case written == 0:
					serr = fmt.Errorf("sendfile: file ended with %d bytes to go", n)
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
		return true
	})
	if serr != nil {
		return fmt.Errorf("kafkaapi: sendfile: %w", serr)
	}
	return cerr
}

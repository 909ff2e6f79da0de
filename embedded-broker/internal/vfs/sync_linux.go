package vfs

import (
	"os"
	"syscall"
)

// datasync is fdatasync: it flushes the data and the size, and skips the
// mtime update an fsync would also write, which saves a journal commit on
// ext4/xfs for every append.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

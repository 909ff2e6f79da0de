// Package vfs is the small file-system interface the embedded broker writes
// through, with two implementations: the operating system's (Default) and an
// in-memory one (MemFS) that can simulate a crash.
//
// Guarantees:
//   - Default maps every call onto the os package; File.Sync is fdatasync on
//     Linux (data and the size needed to read it back, not the mtime).
//   - MemFS is safe for concurrent use. MemFS.CrashClone returns a copy of the
//     file system as a crash would leave it: the bytes covered by a File.Sync
//     survive; unsynced bytes survive in part or not at all; names created,
//     renamed or removed since the last SyncDir of their directory survive
//     or not, as a whole per directory.
//
// Non-guarantees: MemFS does not model permissions, hard links, sparse files
// or partial sector writes inside synced data (a synced byte is never lost).
// Directories made by MkdirAll are durable at once (both implementations are
// used with MkdirAll followed by SyncDir of the parent where it matters).
package vfs

import (
	"io"
	"os"
)

// File is an open file. Write appends at the file's position (the end, for
// files from Create, or the start for OpenReadWrite); WriteAt writes at an
// explicit offset and is what the log uses, so no shared position is needed.
type File interface {
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Sync makes the file's contents durable.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file; Size is its current length.
	Stat() (os.FileInfo, error)
}

// FS is the file system. Paths use the OS separator, as filepath builds them.
type FS interface {
	// Create creates or truncates name, open for reading and writing.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens name for reading and writing, creating it if it
	// does not exist; it never truncates.
	OpenReadWrite(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes name and everything below it; a missing name is fine.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and its missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of dir's entries, sorted.
	List(dir string) ([]string, error)
	// Stat describes name.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the entries of dir (creations, renames, removals) durable.
	SyncDir(dir string) error
}

// Package atomicfile replaces a file's contents durably: after Write
// returns nil, a crash leaves either the old file or the new one, never a
// mix, and the new one survives a power loss.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path through path+".tmp": the temporary file is
// written, fsynced and renamed over path, then the directory is fsynced so
// that the rename itself is durable. The directory must exist.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

func readAll(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, info.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return buf
}

// TestFSContract runs the same operations on the OS and the memory FS.
func TestFSContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func(t *testing.T) (FS, string)
	}{
		{"os", func(t *testing.T) (FS, string) { return Default, t.TempDir() }},
		{"mem", func(t *testing.T) (FS, string) { return NewMem(), "/data" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys, root := tc.fs(t)
			dir := filepath.Join(root, "a", "b")
			if err := fsys.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "f")
			f, err := fsys.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("hello ")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("world"), 6); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, fsys, name); string(got) != "hello world" {
				t.Fatalf("read %q", got)
			}
			if err := f.Truncate(5); err != nil {
				t.Fatal(err)
			}
			if info, _ := f.Stat(); info.Size() != 5 {
				t.Fatalf("size after truncate %d", info.Size())
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			rw, err := fsys.OpenReadWrite(name)
			if err != nil {
				t.Fatal(err)
			}
			if info, _ := rw.Stat(); info.Size() != 5 {
				t.Fatalf("OpenReadWrite truncated: size %d", info.Size())
			}
			rw.Close()
			if err := fsys.Rename(name, filepath.Join(dir, "g")); err != nil {
				t.Fatal(err)
			}
			names, err := fsys.List(dir)
			if err != nil || !slices.Equal(names, []string{"g"}) {
				t.Fatalf("List = %v, %v", names, err)
			}
			if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("stat renamed-away name: %v", err)
			}
			if err := fsys.SyncDir(dir); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Remove(filepath.Join(dir, "g")); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Open(filepath.Join(dir, "g")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("open removed: %v", err)
			}
			if err := fsys.RemoveAll(filepath.Join(root, "a")); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("stat after RemoveAll: %v", err)
			}
		})
	}
}

func TestCrashClone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      CrashOptions
		wantFile  func(got []byte) bool
		wantNames []string
	}{
		{
			name:      "drop all unsynced",
			opts:      CrashOptions{},
			wantFile:  func(got []byte) bool { return string(got) == "synced" },
			wantNames: []string{"kept"},
		},
		{
			name:      "keep all unsynced",
			opts:      CrashOptions{KeepAllUnsynced: true},
			wantFile:  func(got []byte) bool { return string(got) == "synced+tail" },
			wantNames: []string{"kept", "new"},
		},
		{
			name: "random prefix of the tail",
			opts: CrashOptions{UnsyncedDataPercent: 100, Seed: 3},
			wantFile: func(got []byte) bool {
				return bytes.HasPrefix([]byte("synced+tail"), got) && len(got) >= len("synced")
			},
			wantNames: []string{"kept", "new"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := NewMem()
			if err := m.MkdirAll("/d", 0o755); err != nil {
				t.Fatal(err)
			}
			f, _ := m.Create("/d/kept")
			f.Write([]byte("synced"))
			f.Sync()
			if err := m.SyncDir("/d"); err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("+tail"))
			g, _ := m.Create("/d/new")
			g.Write([]byte("x"))
			g.Sync() // data synced, name not: lost unless the directory survives

			c := m.CrashClone(tc.opts)
			if got := readAll(t, c, "/d/kept"); !tc.wantFile(got) {
				t.Fatalf("kept file = %q", got)
			}
			names, _ := c.List("/d")
			if !slices.Equal(names, tc.wantNames) {
				t.Fatalf("names = %v, want %v", names, tc.wantNames)
			}
			// The clone is independent of the original.
			f.Write([]byte("more"))
			if got := readAll(t, c, "/d/kept"); bytes.Contains(got, []byte("more")) {
				t.Fatalf("clone sees writes to the original: %q", got)
			}
		})
	}
}

func TestCrashCloneTruncatedFile(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d", 0o755)
	f, _ := m.Create("/d/f")
	f.Write([]byte("abcdef"))
	f.Sync()
	m.SyncDir("/d")
	f.Truncate(2)
	f.WriteAt([]byte("XY"), 2)
	for seed := range uint64(20) {
		got := string(readAll(t, m.CrashClone(CrashOptions{UnsyncedDataPercent: 50, Seed: seed}), "/d/f"))
		if got != "abcdef" && got != "abXY" {
			t.Fatalf("seed %d: mixed old and new contents %q", seed, got)
		}
	}
}

package history

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func TestAveragesPerMinuteAndGaps(t *testing.T) {
	r := New(Options{Window: 10})
	r.Add(t0, map[string]float64{"in": 10})
	r.Add(t0.Add(30*time.Second), map[string]float64{"in": 20})
	// minute 1: nothing; minute 2: one sample.
	r.Add(t0.Add(2*time.Minute), map[string]float64{"in": 5, "out": 1})
	r.Add(t0.Add(3*time.Minute), map[string]float64{"in": math.NaN()}) // commits minute 2; NaN ignored
	pts, err := r.Series("in", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 3 {
		t.Fatalf("%d points, want 3 (minutes 0..2): %+v", len(pts), pts)
	}
	if pts[0].Value != 15 || !math.IsNaN(pts[1].Value) || pts[2].Value != 5 {
		t.Fatalf("points %+v, want 15, gap, 5", pts)
	}
	if !pts[0].Minute.Equal(t0) || !pts[2].Minute.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("minutes %v %v", pts[0].Minute, pts[2].Minute)
	}
	out, _ := r.Series("out", t0)
	if !math.IsNaN(out[0].Value) || out[2].Value != 1 {
		t.Fatalf("a series first seen in minute 2 has %+v", out)
	}
	if _, err := r.Series("nope", t0); !errors.Is(err, ErrUnknownSeries) {
		t.Fatalf("unknown series: %v", err)
	}
}

func TestWindowWrapsAndClockBack(t *testing.T) {
	r := New(Options{Window: 5})
	for m := range 12 {
		r.Add(t0.Add(time.Duration(m)*time.Minute), map[string]float64{"x": float64(m)})
	}
	r.Add(t0, map[string]float64{"x": 1000}) // the clock went back: ignored
	r.Flush()
	pts, _ := r.Series("x", t0)
	if len(pts) != 5 {
		t.Fatalf("%d points, want the window of 5", len(pts))
	}
	for i, p := range pts {
		if want := float64(7 + i); p.Value != want {
			t.Fatalf("point %d = %v, want %v (%+v)", i, p.Value, want, pts)
		}
	}
}

func TestMaxSeriesBound(t *testing.T) {
	r := New(Options{Window: 3, MaxSeries: 2})
	r.Add(t0, map[string]float64{"a": 1, "b": 1, "c": 1})
	r.Add(t0.Add(time.Minute), map[string]float64{"d": 1})
	r.Flush()
	if n := len(r.Names()); n != 2 {
		t.Fatalf("%d series, want the bound 2: %v", n, r.Names())
	}
	if r.Refused() != 2 {
		t.Fatalf("refused %d, want 2", r.Refused())
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	r := New(Options{Window: 60})
	for m := range 90 {
		r.Add(t0.Add(time.Duration(m)*time.Minute), map[string]float64{"in": float64(m), "lag/p1": float64(2 * m)})
	}
	path := filepath.Join(t.TempDir(), "history.bin")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	back := New(Options{Window: 60})
	if err := back.Load(path); err != nil {
		t.Fatal(err)
	}
	a, _ := r.Series("lag/p1", t0)
	b, _ := back.Series("lag/p1", t0)
	if len(a) != 60 || len(a) != len(b) || a[59] != b[59] || b[59].Value != 178 {
		t.Fatalf("after load: %d vs %d points, last %+v vs %+v", len(a), len(b), a[len(a)-1], b[len(b)-1])
	}
	// Damage is detected and leaves the ring as it was.
	data, _ := os.ReadFile(path)
	data[100] ^= 0xff
	if err := back.UnmarshalBinary(data); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged image: %v", err)
	}
	if pts, _ := back.Series("in", t0); len(pts) != 60 {
		t.Fatal("a failed load changed the ring")
	}
	if err := New(Options{Window: 30}).Load(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other window: %v", err)
	}
	if err := New(Options{}).Load(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	r := New(Options{Window: 4, MaxSeries: 4})
	r.Add(t0, map[string]float64{"a": 1, "bb": 2})
	r.Add(t0.Add(time.Minute), map[string]float64{"a": 3})
	r.Flush()
	good, _ := r.MarshalBinary()
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := New(Options{Window: 4, MaxSeries: 4})
		if err := x.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, _ := x.MarshalBinary()
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs from an accepted image")
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	r := New(Options{})
	vals := map[string]float64{}
	for i := range 64 {
		vals[string(rune('a'+i%26))+string(rune('a'+i/26))] = float64(i)
	}
	now := t0
	for b.Loop() {
		now = now.Add(time.Second)
		r.Add(now, vals)
	}
}

func TestOpenMinuteIsTheLastPoint(t *testing.T) {
	r := New(Options{Window: 10})
	r.Add(t0, map[string]float64{"a": 4})
	if pts, err := r.Series("a", t0); err != nil || len(pts) != 1 || pts[0].Value != 4 {
		t.Fatalf("first minute, still open: %+v %v", pts, err)
	}
	r.Add(t0.Add(time.Minute), map[string]float64{"b": 1}) // commits minute 0; "a" has no sample in minute 1
	a, _ := r.Series("a", t0)
	b, _ := r.Series("b", t0)
	if len(a) != 2 || len(b) != 2 || a[0].Value != 4 || !math.IsNaN(a[1].Value) || !math.IsNaN(b[0].Value) || b[1].Value != 1 {
		t.Fatalf("aligned minutes: a %+v, b %+v", a, b)
	}
}

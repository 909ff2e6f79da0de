package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
)

// verifyInput is what a verification reads.
type verifyInput struct {
	lg            *commitlog.Log
	partitions    int
	pipeline      *pipelines.Pipeline // for the filter: the one decision function the engine uses
	from, to      *Endpoint
	target        system
	targetStart   map[int32]int64
	positionsFile string
}

// verify reads the whole ledger, reads the target back, compares them and
// writes the position map.
func verify(ctx context.Context, in verifyInput) (*Report, error) {
	v := newVerifier(digestOptionsFor(in.to.Kind))
	env := rules.NewEnv()
	for p := range in.partitions {
		start, end, err := in.lg.Offsets(topicName, int32(p))
		if err != nil {
			return nil, err
		}
		for next := start; next < end; {
			evs, err := in.lg.Read(topicName, int32(p), next, 4096, 16<<20)
			if err != nil {
				return nil, fmt.Errorf("read the ledger at %d/%d: %w", p, next, err)
			}
			if len(evs) == 0 {
				return nil, fmt.Errorf("read the ledger: no event at %d/%d below the end %d", p, next, end)
			}
			for i := range evs {
				ev := &evs[i]
				// A rule error: the route stopped on it, so it is expected
				// in the target and reported missing if it is not there.
				routes, err := pipelines.Evaluate(in.pipeline, env, ev)
				v.addLedger(ev, sourceIDOf(in.from.Kind, ev), err == nil && len(routes) == 0)
			}
			next = evs[len(evs)-1].Offset + 1
		}
	}
	if err := in.target.readBack(ctx, in.targetStart, func(m targetMessage) { v.addTarget(&m) }); err != nil {
		return nil, fmt.Errorf("read back %s: %w", in.to, err)
	}
	rep := v.report()
	rep.From, rep.To, rep.PositionsFile = in.from.String(), in.to.String(), in.positionsFile
	if err := writePositions(in.positionsFile, v); err != nil {
		return nil, fmt.Errorf("position map: %w", err)
	}
	return &rep, nil
}

// writePositions writes the position map as JSON lines.
func writePositions(path string, v *verifier) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	enc := json.NewEncoder(w)
	err = v.positions(func(p position) error { return enc.Encode(p) })
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

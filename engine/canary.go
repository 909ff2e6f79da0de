package engine

import (
	"context"
	"hash/fnv"

	"github.com/bridgeio/bridge/event"
)

// CanarySlice is the slice 0..99 of a key: FNV-1a (32 bit) of the key
// bytes, mod 100. A canary of PCT takes the keys whose slice is below PCT,
// so a key is always in one slice and its events keep their order. Events
// without a key all hash to the slice of the empty key.
func CanarySlice(key []byte) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % 100)
}

// handleCanary handles a batch of a route with a canary: the events whose
// key slice is below the percentage go through the canary version, the
// others through the live one; each slice keeps offset order. The batch is
// handled (and acked) only when both slices are.
func (c *cursor) handleCanary(soft, hard context.Context, evs []event.Event) error {
	r := c.r
	live, canary := c.slices2[0][:0], c.slices2[1][:0]
	for i := range evs {
		if CanarySlice(evs[i].Key) < r.canaryPct {
			canary = append(canary, evs[i])
		} else {
			live = append(live, evs[i])
		}
	}
	defer func() {
		clear(live)
		clear(canary)
		c.slices2[0], c.slices2[1] = live[:0], canary[:0]
	}()
	if len(live) > 0 {
		if err := c.handleBatch(soft, hard, live); err != nil {
			return err
		}
	}
	if len(canary) == 0 {
		return nil
	}
	c.r = r.canary
	defer func() { c.r = r }()
	return c.handleBatch(soft, hard, canary)
}

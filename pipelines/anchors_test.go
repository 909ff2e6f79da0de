package pipelines

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	plan, err := Load("testdata/valid/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	q := plan.Config.Broker.Queues
	for name, visibility := range map[string]time.Duration{"work-a": 45 * time.Second, "work-b": 45 * time.Second, "work-c": time.Minute} {
		if q[name].VisibilityTimeout != Duration(visibility) || q[name].DeadLetterQueue != "dlq" || q[name].MaxReceiveCount != 3 {
			t.Errorf("%s = %+v", name, q[name])
		}
	}
	if q["work-c"].Delay != Duration(5*time.Second) || q["work-a"].Delay != 0 {
		t.Errorf("merge override: work-c delay %v, work-a delay %v", q["work-c"].Delay, q["work-a"].Delay)
	}
}

// TestMergedUnknownKey checks that a typo inside merged-in settings is
// still reported, at the anchor where it was written.
func TestMergedUnknownKey(t *testing.T) {
	t.Parallel()
	doc := "broker:\n  queues:\n    a: &w { visiblity_timeout: 1s }\n    b:\n      <<: *w\n      delay: 1s\n"
	_, err := Parse("m.yaml", []byte(doc), nil)
	if !errors.Is(err, ErrUnknownField) || !strings.Contains(err.Error(), "m.yaml:3:13: broker.queues.a.visiblity_timeout") {
		t.Fatalf("err = %v", err)
	}
}

// TestAliasBomb checks that exponential alias expansion is refused quickly
// instead of exhausting memory in the position index.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("x0: &a0 [k, k, k, k, k, k, k, k, k, k]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("x" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()), nil)
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v, want ErrSyntax", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// gc prunes action records and gc records older than the history it keeps,
// but the newest action, and repo stats still sums what every gc reclaimed.
func TestGCPrunesOldHistory(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	action := func() {
		t.Helper()
		a, err := r.StartAction(ctx, "backup", "host", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.FinishAction(ctx, a, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	record := func(n int64) {
		t.Helper()
		data, _ := json.Marshal(gcDone{At: clk.Now(), ReclaimedBytes: n})
		if err := r.st.Put(ctx, fmt.Sprintf("gc/done/%020d-%s", clk.Now().UnixNano(), randomName()), data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		action()
		record(int64(10 * (i + 1)))
	}
	clk.Advance(DefaultHistory + time.Hour)
	action()
	record(40)
	reclaimed := func() int64 {
		t.Helper()
		n, err := r.reclaimed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := reclaimed(); got != 100 {
		t.Fatalf("test setup: %d bytes reclaimed, want 100", got)
	}
	res, err := r.GC(ctx, noMinAge)
	if err != nil {
		t.Fatal(err)
	}
	if res.PrunedActions != 3 || res.PrunedRecords != 3 {
		t.Errorf("gc pruned %d actions and %d gc records, want 3 and 3", res.PrunedActions, res.PrunedRecords)
	}
	as, err := r.Actions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].ID != 4 {
		t.Errorf("actions after gc: %+v, want the young one, 4", as)
	}
	if got := reclaimed(); got != 100 {
		t.Errorf("%d bytes reclaimed after the roll-up, want 100", got)
	}
	if n := len(listNames(t, st, "gc/done/")); n != 2 {
		t.Errorf("%d gc records after gc, want the roll-up and the young one", n)
	}

	// A crash after a roll-up, before its records went: each counts once.
	clk.Advance(DefaultHistory + time.Hour)
	record(5)
	names := listNames(t, st, "gc/done/")
	var old []string
	for _, n := range names {
		if !strings.HasPrefix(n, fmt.Sprintf("gc/done/%020d", clk.Now().UnixNano())) {
			old = append(old, n)
		}
	}
	if len(old) != 2 {
		t.Fatalf("test setup: gc records %v", names)
	}
	// It sums the two there were: the first roll-up (60) and the young 40.
	data, _ := json.Marshal(gcDone{At: clk.Now(), ReclaimedBytes: 100, Covers: old})
	if err := r.st.Put(ctx, "gc/done/99999999999999999999-rollup", data); err != nil {
		t.Fatal(err)
	}
	if got := reclaimed(); got != 105 {
		t.Errorf("%d bytes reclaimed with a roll-up beside what it covers, want 105", got)
	}

	// Every action old: the newest stays, so new IDs count on from it.
	clk.Advance(DefaultHistory + time.Hour)
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultHistory + time.Hour)
	if _, err := r.GC(ctx, GCOptions{MinAge: -1, History: -1}); err != nil {
		t.Fatal(err)
	}
	as, err = r.Actions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].ID != 4 {
		t.Errorf("actions after pruning all old ones: %+v, want the newest, 4, kept", as)
	}
	if got := reclaimed(); got != 105 {
		t.Errorf("%d bytes reclaimed after more roll-ups, want 105", got)
	}
}

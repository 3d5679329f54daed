package engine

// Fuzz targets for the records of the deletion protocol (operation
// markers, gc leases, claims and their outcomes, gc records), and the size
// limits of every record kind. As in fuzz_test.go, each good seed must
// decode: a reader that refused everything would pass the targets.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fzGood fails f unless ok: a good seed that does not decode.
func fzGood(f *testing.F, what string, ok bool) {
	f.Helper()
	if !ok {
		f.Fatalf("a good %s does not decode", what)
	}
}

func FuzzOpMarker(f *testing.F) {
	r, st := fzRepo(f)
	op, err := r.Begin(context.Background(), OpBackup, 1)
	if err != nil {
		f.Fatal(err)
	}
	name := opObject(op.ID(), 1)
	good, _ := st.Get(context.Background(), name, 0, -1)
	ops, err := r.runningOps(context.Background())
	_, running := ops[op.ID()]
	fzGood(f, "operation marker", err == nil && running)
	op.End()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"op":"x","started_at":"0001-01-01T00:00:00Z","seq":-1}`))
	f.Add([]byte(`{"started_at":"9999-12-31T23:59:59Z","pid":-1,"boot_id":"` + strings.Repeat("x", 1000) + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set("running/0123456789abcdef-0000000001", data)
		st.set("running/0123456789abcdef", data)
		r.runningOps(ctx)
		r.GC(ctx, noMinAge)
	})
}

func FuzzLeaseRecord(f *testing.F) {
	me := hostMachine{}.Self()
	good, _ := json.Marshal(leaseRecord{Op: "0123456789abcdef", Since: time.Now().UTC(), processID: me})
	{
		r, st := fzRepo(f)
		st.set(leaseObject(1), good)
		holder, err := r.leaseHolder(context.Background(), 1)
		fzGood(f, "gc lease", err == nil && strings.Contains(holder, "gc by"))
	}
	f.Add(good)
	f.Add([]byte(`{"op":""}`))
	f.Add([]byte(`{"op":"x","since":"not a time"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set(leaseObject(1), data)
		r.leaseHolder(ctx, 1)
		r.GC(ctx, GCOptions{})
	})
}

func FuzzClaim(f *testing.F) {
	window := time.Unix(1e9, 0).UTC()
	c := Claim{HostID: 1, Window: window, Attempt: 1}
	attempt, _ := json.Marshal(attemptRecord{Op: "0123456789abcdef", At: window, processID: hostMachine{}.Self()})
	outcome, _ := json.Marshal(Outcome{At: window, Error: "disk gone"})
	{
		r, st := fzRepo(f)
		st.set(c.name(), attempt)
		st.set(c.outcomeName(), outcome)
		errs, err := r.ScheduleErrors(context.Background())
		fzGood(f, "claim outcome", err == nil && errs[1].Error == "disk gone")
	}
	f.Add(attempt, outcome)
	f.Add(attempt, []byte(nil))
	f.Add([]byte(`{"op":""}`), []byte(`{"at":"x"}`))
	f.Add([]byte(`[]`), []byte(`{"backup_id":-1}`))
	f.Fuzz(func(t *testing.T, attempt, outcome []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set(c.name(), attempt)
		if outcome != nil {
			st.set(c.outcomeName(), outcome)
		}
		r.attemptBusy(ctx, c)
		r.ScheduleErrors(ctx)
		op, err := r.Begin(ctx, OpBackup, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer op.End()
		r.ClaimBackup(ctx, op, 1, window)
	})
}

func FuzzGCDone(f *testing.F) {
	good, _ := json.Marshal(gcDone{At: time.Unix(1e9, 0).UTC(), DeletedPacks: 2, ReclaimedBytes: 12345})
	{
		r, st := fzRepo(f)
		st.set("gc/done/00000000000000000001-00", good)
		n, err := r.reclaimed(context.Background())
		fzGood(f, "gc record", err == nil && n == 12345)
	}
	f.Add(good)
	f.Add([]byte(`{"reclaimed_bytes":-9223372036854775808}`))
	f.Add([]byte(`{"reclaimed_bytes":1e400}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, st := fzRepo(t)
		st.set("gc/done/00000000000000000001-00", data)
		st.set("gc/done/00000000000000000002-00", data)
		r.Stats(context.Background())
	})
}

// Every record kind is read up to its limit and refused beyond it: a good
// record padded with spaces to exactly the limit reads, one byte more is
// damage that names the limit.
func TestEveryRecordKindHasItsLimit(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1e9, 0).UTC()
	action, _ := json.Marshal(ActionRecord{ID: 1, N: 1, Type: "backup", Status: ActionCompleted, StartedAt: now})
	mark, _ := json.Marshal(gcMark{At: now, Packs: []string{fzID(1).String()}})
	d := damage{}
	d.add(fzID(1), fzID(2))
	host, _ := seal(HostRecord{ID: 1, Rev: 1, Name: "web-1", Disks: []DiskSource{{Name: "vda", Path: "/x.img"}}})
	cases := []struct {
		name  string
		obj   string
		good  []byte
		limit int
		read  func(r *Repo) error
		// over, when set, tells a record refused for its size; else
		// that is damage naming the limit.
		over func(err error) bool
	}{
		{"manifest", "backups/0000000001", fzManifest(), maxManifestSize, func(r *Repo) error {
			_, err := r.Manifest(ctx, 1)
			return err
		}, nil},
		{"host record", hostObject(1, 1), host, maxHostSize, func(r *Repo) error {
			_, err := r.readHostRev(ctx, 1, 1)
			return err
		}, nil},
		{"action record", actionObject(1, 1), action, maxActionSize, func(r *Repo) error {
			_, err := r.Action(ctx, 1)
			return err
		}, nil},
		{"gc mark", "gc/condemned/00000000000000000001-00", mark, maxGCMarkSize, func(r *Repo) error {
			packs, _, err := r.condemned(ctx)
			if err == nil && !packs[fzID(1)] {
				err = errors.New("the mark is not read")
			}
			return err
		}, func(err error) bool {
			// A mark too large to read condemns nothing, as one that
			// does not parse.
			return err != nil && err.Error() == "the mark is not read"
		}},
		{"damage record", "damaged/00000000000000000001-00", encodeDamage(now, d), maxDamageSize, func(r *Repo) error {
			_, _, problems, err := r.loadDamage(ctx)
			if err == nil && len(problems) > 0 {
				err = problems[0]
			}
			return err
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, st := fzRepo(t)
			at := append(bytes.Clone(c.good), bytes.Repeat([]byte(" "), c.limit-len(c.good))...)
			st.set(c.obj, at)
			if err := c.read(r); err != nil {
				t.Errorf("a %s of exactly %d bytes: %v", c.name, c.limit, err)
			}
			st.set(c.obj, append(at, ' '))
			err := c.read(r)
			refused := errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), "larger than "+sizeText(int64(c.limit)))
			if c.over != nil {
				refused = c.over(err)
			}
			if !refused {
				t.Errorf("a %s of %d bytes: %v, want it refused for its size", c.name, c.limit+1, err)
			}
		})
	}

	// The config, before the repository opens.
	_, st := fzRepo(t)
	good, _ := st.Get(ctx, "config", 0, -1)
	st.set("config", append(good, bytes.Repeat([]byte(" "), maxConfigSize-len(good))...))
	if _, err := Open(ctx, st, Options{Password: testPassword}); err != nil {
		t.Errorf("a config of exactly %d bytes: %v", maxConfigSize, err)
	}
	st.set("config", append(good, bytes.Repeat([]byte(" "), maxConfigSize+1-len(good))...))
	if _, err := Open(ctx, st, Options{Password: testPassword}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "larger than 64 KiB") {
		t.Errorf("a config of %d bytes: %v, want damage naming its limit", maxConfigSize+1, err)
	}
}

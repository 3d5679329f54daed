package engine

import (
	"context"
	"testing"

	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

func pw(s string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(s), nil }
}

// Found by review (failed before passwd held the gc lease): keys A and B.
// P2 (opened with A) runs `repo key passwd`: it writes C,
// then deletes A, without the gc lease. Between the two, P3 (opened with
// B) removes C (listed, readable 3) and then P4 (opened with A) removes B
// (listed: A and B, readable 2; B is not its own). Each removal holds the
// lease and sees a key that stays; P2 then deletes A, which P4 counted on.
// No key is left: nothing in the repository can be read.
func TestRedteamFinalKeysPasswdBesideRemovalsLeavesNoKey(t *testing.T) {
	ctx := context.Background()
	st := mem.New(nil)
	if _, err := Init(ctx, st, InitOptions{ChunkSize: testChunk, Password: []byte("pass-A"), KDF: testKDF,
		Options: Options{Password: pw("pass-A")}}); err != nil {
		t.Fatal(err)
	}
	p4, err := Open(ctx, st, Options{Password: pw("pass-A")})
	if err != nil {
		t.Fatal(err)
	}
	a := p4.sec.keyID
	b, err := p4.AddKey(ctx, []byte("pass-B"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := Open(ctx, st, Options{Password: pw("pass-B")})
	if err != nil {
		t.Fatal(err)
	}
	var hookErr []error
	hook := func() {
		infos, err := p3.Keys(ctx)
		if err != nil {
			hookErr = append(hookErr, err)
			return
		}
		for _, k := range infos {
			if k.ID != a && k.ID != b {
				hookErr = append(hookErr, p3.RemoveKey(ctx, k.ID))
			}
		}
		hookErr = append(hookErr, p4.RemoveKey(ctx, b))
	}
	fs := faulty.New(st, faulty.Rule{Op: faulty.Delete, Pattern: keyName(a), Times: 1, Hook: hook})
	p2, err := Open(ctx, fs, Options{Password: pw("pass-A")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.ChangePassword(ctx, []byte("pass-C"), testKDF); err != nil {
		t.Logf("passwd: %v", err)
	}
	t.Logf("removals between: %v", hookErr)
	for _, p := range []string{"pass-A", "pass-B", "pass-C"} {
		if _, err := Open(ctx, st, Options{Password: pw(p)}); err == nil {
			return // some key still opens it
		}
	}
	infos, _, _ := readKeys(ctx, st)
	t.Fatalf("no password opens the repository any more; keys left: %+v", infos)
}

package key

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
)

var cheap = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Params
		err  string
	}{
		{"", DefaultParams, ""},
		{"t=1,m=8KiB,p=1", Params{1, 8, 1}, ""},
		{"t=4,m=256MiB", Params{4, 256 << 10, 4}, ""},
		{"m=1GiB,p=2", Params{3, 1 << 20, 2}, ""},
		{"t=0", Params{}, "time 0"},
		{"m=8GiB", Params{}, "memory"},
		{"m=4KiB,p=4", Params{}, "memory 4 KiB"},
		{"x=1", Params{}, "unknown"},
		{"t", Params{}, "want t=N"},
	} {
		got, err := ParseParams(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseParams(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseParams(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestWrapUnwrap(t *testing.T) {
	for _, aead := range []string{crypt.XAES256GCM, crypt.XChaCha20Poly1305} {
		t.Run(aead, func(t *testing.T) { testWrapUnwrap(t, aead) })
	}
}

func testWrapUnwrap(t *testing.T, aead string) {
	m, _ := NewMaster()
	data, err := Wrap(m, []byte("pw"), cheap, "repo", "key", aead, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.Unwrap([]byte("pw"), "repo", "key", aead)
	if err != nil || got != m {
		t.Fatalf("unwrap: %v", err)
	}
	for what, args := range map[string][3]string{
		"wrong password":   {"pw2", "repo", "key"},
		"other repository": {"pw", "repo2", "key"},
		"other key name":   {"pw", "repo", "key2"},
	} {
		if _, err := o.Unwrap([]byte(args[0]), args[1], args[2], aead); err != ErrWrongPassword {
			t.Errorf("%s: %v", what, err)
		}
	}
	// A config changed to name the other AEAD opens no key, and the right
	// password says so, not that it is wrong.
	other := crypt.XAES256GCM
	if aead == other {
		other = crypt.XChaCha20Poly1305
	}
	if _, err := o.Unwrap([]byte("pw"), "repo", "key", other); !errors.Is(err, ErrOtherAEAD) || !strings.Contains(err.Error(), aead+", not "+other) {
		t.Errorf("the other AEAD: %v", err)
	}
	if _, err := o.Unwrap([]byte("pw2"), "repo", "key", other); err != ErrWrongPassword {
		t.Errorf("the other AEAD and a wrong password: %v", err)
	}
	if bytes.Contains(data, m[:]) {
		t.Error("the key object holds the master key in plain")
	}
}

// FuzzDecode: a key object decodes only when everything in it is within
// bounds, so that opening it costs at most what Check allows.
func FuzzDecode(f *testing.F) {
	m, _ := NewMaster()
	good, _ := Wrap(m, []byte("pw"), cheap, "repo", "key", crypt.XAES256GCM, time.Unix(0, 0))
	f.Add(good)
	f.Add([]byte(`{"version":1,"kdf":"argon2id","params":{"time":4294967295,"memory_kib":4294967295,"threads":255}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Decode(data)
		if err != nil {
			return
		}
		if err := o.Params.Check(); err != nil {
			t.Fatalf("decoded a key of parameters %v: %v", o.Params, err)
		}
		if o.Params.Cost() > cheap.Cost()*64 {
			return // a real KDF run; the fuzzer need not pay for it
		}
		if _, err := o.Unwrap([]byte("not the password"), "repo", "key", crypt.XAES256GCM); err == nil && !bytes.Equal(data, good) {
			t.Fatal("a fuzzed key object opens")
		}
	})
}

package engine

import (
	"context"
	"flag"
	"time"

	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/store/mem"
)

// The engine's tests run on encrypted repositories, as users get by
// default; -plain runs them on repositories that are not encrypted:
//
//	go test ./pkg/engine -args -plain
var plainRepos = flag.Bool("plain", false, "run the engine's tests on repositories that are not encrypted")

// testKDF is a cheap Argon2id for tests; what the default costs is
// measured by the benchmark, not here.
var testKDF = key.Params{Time: 1, MemoryKiB: 64, Threads: 1}

const testPasswordText = "correct horse battery staple"

// testPassword gives the tests' password.
func testPassword(context.Context) ([]byte, error) { return []byte(testPasswordText), nil }

// encrypt makes o an encrypted repository's, unless -plain, with the
// tests' password and KDF; every repository of o opens with testPassword.
func encrypt(o InitOptions) InitOptions {
	if !*plainRepos {
		o.Password, o.KDF = []byte(testPasswordText), testKDF
	}
	o.Options.Password = testPassword
	return o
}

// sealedMem sets objects in a mem.Store as the repository r writes them:
// sealed under their name when it is encrypted.
type sealedMem struct {
	*mem.Store
	r *Repo
}

func (s sealedMem) Set(name string, data []byte, mod time.Time) {
	if s.r.sec != nil && classOf(name) != classPlain {
		data = s.r.sec.cipher.SealObject(name, data)
	}
	s.Store.Set(name, data, mod)
}

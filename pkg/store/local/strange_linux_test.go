package local

import (
	"testing"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/storetest"
)

// Where the kernel has no openat2, objects are reached one directory at a
// time, each opened without following a link: the same suite holds.
func TestConformanceWithoutOpenat2(t *testing.T) {
	was := noOpenat2.Load()
	noOpenat2.Store(true)
	t.Cleanup(func() { noOpenat2.Store(was) })
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, t.TempDir())
	}, storetest.WithPlanter(plant))
}

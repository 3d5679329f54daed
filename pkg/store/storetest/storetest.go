// Package storetest is the conformance suite that every store.Store
// implementation runs, so that the engine can rely on the contract written
// in package store and nothing else.
//
// An implementation's test calls Run with a function that opens a new, empty
// store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := local.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Names that are both an object and a directory of objects ("a" and "a/b")
// are avoided: filesystems cannot hold them and the engine never makes them.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/store"
)

// Run runs the conformance suite. open returns a new, empty store; it is
// called once per subtest and may register cleanups on t. A store that
// things other than objects can be planted in (a filesystem) passes a
// Planter with WithPlanter, and runs the Strange tests too.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PutGet", testPutGet},
		{"CreateOnce", testCreateOnce},
		{"GetRange", testGetRange},
		{"Stat", testStat},
		{"List", testList},
		{"ListStops", testListStops},
		{"ListInvalidPrefix", testListInvalidPrefix},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"InvalidNames", testInvalidNames},
		{"BuffersNotShared", testBuffersNotShared},
		{"ConcurrentSameName", testConcurrentSameName},
		{"ConcurrentNames", testConcurrentNames},
		{"Large", testLarge},
		{"Cancelled", testCancelled},
		{"CancelledDuringList", testCancelledDuringList},
		{"Location", testLocation},
		{"ReadAt", testReadAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.plant != nil {
		runStrange(t, open, o.plant)
	}
}

// content returns n deterministic pseudo-random bytes for seed.
func content(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func put(t *testing.T, s store.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), name, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
}

func get(t *testing.T, s store.Store, name string, off, length int64) []byte {
	t.Helper()
	b, err := s.Get(context.Background(), name, off, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", name, off, length, err)
	}
	return b
}

// equal fails the test unless got and want hold the same bytes.
func equal(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d bytes (first difference at %d)",
			what, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// names lists the names of the objects under prefix, sorted.
func names(t *testing.T, s store.Store, prefix string) []string {
	t.Helper()
	var got []string
	err := s.List(context.Background(), prefix, func(fi store.Info) error {
		got = append(got, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	slices.Sort(got)
	return got
}

func testPutGet(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one", 1},
		{"nested/dir/block", 4096},
		{"packs/ab/abcdef0123", 1<<20 + 3},
		{"name with spaces and ünïcode", 100},
		{".hidden", 10},
	}
	for i, tt := range tests {
		data := content(uint64(i), tt.size)
		put(t, s, tt.name, data)
		equal(t, "Get "+tt.name, get(t, s, tt.name, 0, -1), data)
	}
}

func testCreateOnce(t *testing.T, s store.Store) {
	first, second := content(1, 1000), content(2, 2000)
	put(t, s, "config", first)
	err := s.Put(context.Background(), "config", second)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Put: got %v, want ErrExists", err)
	}
	equal(t, "Get after second Put", get(t, s, "config", 0, -1), first)

	// The same content again is ErrExists too: content-addressed writers
	// rely on it.
	if err := s.Put(context.Background(), "config", first); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Put of the same content: got %v, want ErrExists", err)
	}
}

func testGetRange(t *testing.T, s store.Store) {
	const size = 1000
	data := content(3, size)
	put(t, s, "obj", data)
	tests := []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, data},
		{0, size, data},
		{0, 1, data[:1]},
		{10, 20, data[10:30]},
		{500, -1, data[500:]},
		{999, -1, data[999:]},
		{999, 5, data[999:]},
		{990, 100, data[990:]},
		{0, size + 1000, data},
		{size, -1, nil},
		{size, 10, nil},
		{size + 5000, 10, nil},
		{size + 5000, -1, nil},
		{0, 0, nil},
		{500, 0, nil},
	}
	for _, tt := range tests {
		got := get(t, s, "obj", tt.off, tt.length)
		equal(t, fmt.Sprintf("Get(obj, %d, %d)", tt.off, tt.length), got, tt.want)
	}
}

func testStat(t *testing.T, s store.Store) {
	data := content(4, 12345)
	before := time.Now()
	put(t, s, "dir/obj", data)
	put(t, s, "dir/empty", nil)
	for name, size := range map[string]int64{"dir/obj": 12345, "dir/empty": 0} {
		fi, err := s.Stat(context.Background(), name)
		if err != nil {
			t.Fatalf("Stat(%q): %v", name, err)
		}
		if fi.Name != name || fi.Size != size {
			t.Errorf("Stat(%q) = %q, %d bytes; want %q, %d bytes", name, fi.Name, fi.Size, name, size)
		}
		// Allow for clock skew between a remote store and this machine.
		if d := fi.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
			t.Errorf("Stat(%q).ModTime = %v, more than an hour from %v", name, fi.ModTime, before)
		}
	}
}

func testList(t *testing.T, s store.Store) {
	all := []string{"ab", "a/b1", "a/b2/c", "a/bc/d", "abc/x", "b/x", "bb"}
	for i, name := range all {
		put(t, s, name, content(uint64(i), i*10))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"ab", "a/b1", "a/b2/c", "a/bc/d", "abc/x"}},
		{"a/", []string{"a/b1", "a/b2/c", "a/bc/d"}},
		{"a/b", []string{"a/b1", "a/b2/c", "a/bc/d"}},
		{"a/b2", []string{"a/b2/c"}},
		{"a/b2/", []string{"a/b2/c"}},
		{"a/b2/c", []string{"a/b2/c"}},
		{"ab", []string{"ab", "abc/x"}},
		{"abc/", []string{"abc/x"}},
		{"b", []string{"b/x", "bb"}},
		{"c", nil},
		{"zz/", nil},
		{"zz/y/", nil},
		{"a/b1/", nil},
	}
	for _, tt := range tests {
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if got := names(t, s, tt.prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, want)
		}
	}

	// Sizes are reported.
	err := s.List(context.Background(), "", func(fi store.Info) error {
		i := slices.Index(all, fi.Name)
		if fi.Size != int64(i*10) {
			t.Errorf("List: %q has size %d, want %d", fi.Name, fi.Size, i*10)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
}

func testListStops(t *testing.T, s store.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("x/%d", i), []byte{byte(i)})
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(context.Background(), "x/", func(store.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List: got %v, want the error fn returned", err)
	}
	if calls != 1 {
		t.Fatalf("List called fn %d times after it failed, want 1", calls)
	}
}

func testListInvalidPrefix(t *testing.T, s store.Store) {
	put(t, s, "a/b", []byte("x"))
	for _, prefix := range []string{"../", "/", "/a", "a/../", "..", "a//"} {
		var got []string
		err := s.List(context.Background(), prefix, func(fi store.Info) error {
			got = append(got, fi.Name)
			return nil
		})
		// An error or nothing: never an object from outside the store.
		if err == nil && len(got) > 0 {
			t.Errorf("List(%q) = %q, want an error or nothing", prefix, got)
		}
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "d/obj", content(5, 100))
	put(t, s, "d/other", content(6, 100))
	if err := s.Delete(ctx, "d/obj"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, "d/obj"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stat after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "d/obj", 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if got := names(t, s, ""); !slices.Equal(got, []string{"d/other"}) {
		t.Fatalf("List after Delete = %q, want [d/other]", got)
	}
	for _, name := range []string{"d/obj", "never", "d/never/deeper", "d"} {
		if err := s.Delete(ctx, name); err != nil {
			t.Errorf("Delete(%q) of a missing object: %v", name, err)
		}
	}
	// The name can be used again.
	again := content(7, 50)
	put(t, s, "d/obj", again)
	equal(t, "Get after Put of a deleted name", get(t, s, "d/obj", 0, -1), again)
	equal(t, "Get of the other object", get(t, s, "d/other", 0, -1), content(6, 100))
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "a/b", []byte("x"))
	for _, name := range []string{"missing", "a/missing", "a", "a/b/c", "x/y/z"} {
		if _, err := s.Get(ctx, name, 0, -1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q): got %v, want ErrNotFound", name, err)
		}
		for _, length := range []int64{10, 0} {
			if _, err := s.Get(ctx, name, 0, length); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%q, 0, %d): got %v, want ErrNotFound", name, length, err)
			}
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q): got %v, want ErrNotFound", name, err)
		}
	}
}

func testInvalidNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	bad := []string{"", ".", "..", "/a", "a/", "a//b", "a/./b", "a/../b", "../a", "a/..", "a\x00b", "a\\b"}
	for _, name := range bad {
		if err := s.Put(ctx, name, []byte("x")); err == nil || errors.Is(err, store.ErrExists) {
			t.Errorf("Put(%q): got %v, want an invalid-name error", name, err)
		}
		if _, err := s.Get(ctx, name, 0, -1); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q): got %v, want an invalid-name error", name, err)
		}
		if _, err := s.Stat(ctx, name); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q): got %v, want an invalid-name error", name, err)
		}
		if err := s.Delete(ctx, name); err == nil {
			t.Errorf("Delete(%q): got nil, want an invalid-name error", name)
		}
	}
	if got := names(t, s, ""); len(got) > 0 {
		t.Errorf("invalid names created objects %q", got)
	}
}

func testBuffersNotShared(t *testing.T, s store.Store) {
	data := content(8, 1000)
	orig := slices.Clone(data)
	put(t, s, "obj", data)
	data[0] ^= 0xff // the caller may reuse its buffer after Put
	got := get(t, s, "obj", 0, -1)
	equal(t, "Get after the caller changed its buffer", got, orig)
	got[1] ^= 0xff // and change what Get returned
	equal(t, "Get after the caller changed a returned buffer", get(t, s, "obj", 0, -1), orig)
}

func testConcurrentSameName(t *testing.T, s store.Store) {
	const writers = 8
	var (
		wg   sync.WaitGroup
		errs [writers]error
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			data := content(uint64(100+i), 256<<10)
			<-start
			errs[i] = s.Put(context.Background(), "race", data)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created the object", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Fatalf("writer %d: got %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the object")
	}
	equal(t, "Get of the raced object", get(t, s, "race", 0, -1), content(uint64(100+winner), 256<<10))
}

func testConcurrentNames(t *testing.T, s store.Store) {
	const writers, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	name := func(w, i int) string { return fmt.Sprintf("c/%d/obj-%02d-%d", i%4, w, i) }
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.Put(context.Background(), name(w, i), content(uint64(w*each+i), 1000+w)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	if got := names(t, s, "c/"); len(got) != writers*each {
		t.Fatalf("List after concurrent Puts found %d objects, want %d", len(got), writers*each)
	}
	for w := range writers {
		for i := range each {
			equal(t, "Get "+name(w, i), get(t, s, name(w, i), 0, -1), content(uint64(w*each+i), 1000+w))
		}
	}
}

func testLarge(t *testing.T, s store.Store) {
	if testing.Short() {
		t.Skip("large object skipped in short mode")
	}
	const size = 40<<20 + 7
	data := content(9, size)
	put(t, s, "packs/large", data)
	fi, err := s.Stat(context.Background(), "packs/large")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.Size != size {
		t.Fatalf("Stat: size %d, want %d", fi.Size, size)
	}
	equal(t, "Get of the whole object", get(t, s, "packs/large", 0, -1), data)
	for _, r := range [][2]int64{{0, 1 << 20}, {size - 100, 1000}, {17 << 20, 3<<20 + 1}, {size / 2, -1}} {
		end := size
		if r[1] >= 0 {
			end = min(size, int(r[0]+r[1]))
		}
		equal(t, fmt.Sprintf("Get(%d, %d)", r[0], r[1]), get(t, s, "packs/large", r[0], r[1]), data[r[0]:end])
	}
}

func testCancelled(t *testing.T, s store.Store) {
	put(t, s, "exists", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "new", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "exists", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "exists"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: got %v, want context.Canceled", err)
	}
	if err := s.List(ctx, "", func(store.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context: got %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "exists"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context: got %v, want context.Canceled", err)
	}
	// Nothing was done.
	if got := names(t, s, ""); !slices.Equal(got, []string{"exists"}) {
		t.Errorf("objects after cancelled calls = %q, want [exists]", got)
	}
}

func testCancelledDuringList(t *testing.T, s store.Store) {
	const n = 20
	for i := range n {
		put(t, s, fmt.Sprintf("l/%02d", i), nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := s.List(ctx, "l/", func(store.Info) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("List cancelled by fn: got %v, want context.Canceled", err)
	}
	if calls >= n {
		t.Fatalf("List went on for all %d objects after it was cancelled", calls)
	}
}

func testLocation(t *testing.T, s store.Store) {
	if s.Location() == "" {
		t.Fatal("Location is empty")
	}
}

// testReadAt checks store.ReadAt, which uses the store's ReaderAt when it
// has one: a read inside, one across the end, and a missing object.
func testReadAt(t *testing.T, s store.Store) {
	ctx := context.Background()
	data := content(7, 1000)
	if err := s.Put(ctx, "ra/obj", data); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := store.ReadAt(ctx, s, "ra/obj", buf, 250)
	if err != nil || n != 100 || !bytes.Equal(buf, data[250:350]) {
		t.Fatalf("ReadAt inside: n %d, err %v", n, err)
	}
	n, err = store.ReadAt(ctx, s, "ra/obj", buf, 950)
	if err != nil || n != 50 || !bytes.Equal(buf[:n], data[950:]) {
		t.Fatalf("ReadAt across the end: n %d, err %v", n, err)
	}
	if _, err := store.ReadAt(ctx, s, "ra/missing", buf, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReadAt of a missing object: %v, want ErrNotFound", err)
	}

	// Large objects put from, and read into, page-aligned buffers: what the
	// engine does with packs, and what a store may serve around its cache.
	const size = 3<<20 + 123
	big := directio.Alloc(size)
	copy(big, content(8, size))
	if err := s.Put(ctx, "ra/big", big); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "ra/big", 0, -1); !bytes.Equal(got, big) {
		t.Fatalf("Get of a large object put from an aligned buffer returned other bytes")
	}
	for _, c := range []struct {
		off     int64
		n, want int
	}{
		{0, 1 << 20, 1 << 20},
		{1 << 20, 2<<20 + 4096, 2<<20 + 123},
		{3 << 20, 1 << 20, 123},
		{4 << 20, 1 << 20, 0},
	} {
		p := directio.Alloc(c.n)
		n, err := store.ReadAt(ctx, s, "ra/big", p, c.off)
		if err != nil || n != c.want || n > 0 && !bytes.Equal(p[:n], big[c.off:c.off+int64(n)]) {
			t.Fatalf("aligned ReadAt of %d bytes at %d: n %d, err %v; want %d bytes", c.n, c.off, n, err, c.want)
		}
	}
}

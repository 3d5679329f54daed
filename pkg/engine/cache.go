package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/store"
)

// The local cache of objects that never change once written (docs/format.md,
// "The local cache"): manifests and index segments, as the store holds
// them (encrypted, in an encrypted repository). An entry is found only by what a listing of the store said a moment
// ago (name, size and the store's time), so a missing or changed object is
// never served from it; what it serves is checked as if read from the
// store (a segment's bytes against its name, a manifest's seal), and an
// entry that fails is dropped and the object read from the store. Whatever
// must know what the store holds (verify, gc) reads past it.

// DefaultCacheLimit bounds the cache of one repository.
const DefaultCacheLimit = 256 << 20

type objectCache struct {
	dir   string
	limit int64
	once  sync.Once
}

type noCacheKey struct{}

// withoutCache returns a context whose reads go to the store, not the cache.
func withoutCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, noCacheKey{}, true)
}

func (r *Repo) cacheFor(ctx context.Context) *objectCache {
	if r.cache == nil || ctx.Value(noCacheKey{}) != nil {
		return nil
	}
	return r.cache
}

// path is where the entry of info lives: its name, size and the store's
// time, so that another object of the name is another entry.
func (c *objectCache) path(info store.Info) string {
	return filepath.Join(c.dir, filepath.FromSlash(info.Name)+fmt.Sprintf("@%d-%d", info.Size, info.ModTime.UnixNano()))
}

func (c *objectCache) get(info store.Info) ([]byte, bool) {
	p := c.path(info)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // recently used
	return data, true
}

// drop removes an entry that did not check out.
func (c *objectCache) drop(info store.Info) { _ = os.Remove(c.path(info)) }

// put stores data as the entry of info: written whole to a temporary file,
// then renamed, so that a concurrent command sees all of it or none.
func (c *objectCache) put(info store.Info, data []byte) {
	c.once.Do(c.prune)
	p := c.path(info)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), p) != nil {
		_ = os.Remove(f.Name())
	}
}

// prune deletes the least recently used entries until the cache is below
// its limit; once a process, before its first entry. It also clears
// temporary files an ended process left.
func (c *objectCache) prune() {
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var all []entry
	var total int64
	_ = filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") && time.Since(info.ModTime()) > time.Hour {
			_ = os.Remove(p)
			return nil
		}
		all = append(all, entry{p, info.Size(), info.ModTime()})
		total += info.Size()
		return nil
	})
	if total <= c.limit {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, e := range all {
		if total <= c.limit*3/4 {
			break
		}
		if os.Remove(e.path) == nil {
			total -= e.size
		}
	}
}

// readListed reads the object a listing described as info, through the
// cache when there is one. The cache holds the object as the store holds
// it (encrypted, in an encrypted repository); check says whether the
// plaintext is the object (it is what its name or seal says), and an entry
// that does not open or fails check is dropped and the object read from
// the store.
func (r *Repo) readListed(ctx context.Context, info store.Info, what string, limit int64, check func([]byte) bool) ([]byte, error) {
	c := r.cacheFor(ctx)
	if c == nil || info.Size > limit {
		return r.readObject(ctx, info.Name, what, limit, info.Size)
	}
	if stored, ok := c.get(info); ok {
		if plain, err := r.openStored(info.Name, stored); err == nil && check(plain) {
			return plain, nil
		}
		c.drop(info)
	}
	over := r.storedOverhead(info.Name)
	stored, err := readBounded(ctx, damageStore{r.raw}, info.Name, what, limit+over, info.Size+over)
	if err != nil {
		return nil, err
	}
	plain, err := r.openStored(info.Name, stored)
	if err != nil {
		return nil, err
	}
	if check(plain) {
		c.put(info, stored)
	}
	return plain, nil
}

// storedOverhead is what the store holds of name beyond its plaintext.
func (r *Repo) storedOverhead(name string) int64 {
	if r.sec == nil || classOf(name) == classPlain {
		return 0
	}
	return int64(crypt.ObjectOverhead)
}

// openStored returns the plaintext of name from the bytes the store holds,
// as cryptStore gives it.
func (r *Repo) openStored(name string, stored []byte) ([]byte, error) {
	if r.storedOverhead(name) == 0 {
		return stored, nil
	}
	plain, err := r.sec.cipher.OpenObject(name, stored)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %w (%s)", ErrCorrupt, name, errUndecryptable, undecryptableWhy(stored))
	}
	return plain, nil
}

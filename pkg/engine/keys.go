package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/store"
)

// secrets are the keys of an open encrypted repository.
type secrets struct {
	master key.Master
	sub    key.Subkeys
	cipher *crypt.Cipher
	keyID  string // the key object that opened it
}

// newSecrets returns the keys of a repository whose boxes are sealed with
// the AEAD aead, opened by the key object keyID.
func newSecrets(m key.Master, aead, keyID string) (*secrets, error) {
	sub := m.Derive(aead)
	c, err := crypt.New(aead, sub.Encryption[:])
	if err != nil {
		return nil, err
	}
	return &secrets{master: m, sub: sub, cipher: c, keyID: keyID}, nil
}

// maxKeys is the most key objects a repository holds; Open tries at most
// this many, cheapest first, so that planted keys cannot make it run
// Argon2id without end.
const maxKeys = 32

func keyName(id string) string { return "keys/" + id }

// isKeyID reports whether s is the name of a key object: 32 hex digits.
func isKeyID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// firstKey makes the master key of a new encrypted repository and writes
// its first key object.
func firstKey(ctx context.Context, st store.Store, cfg Config, opts InitOptions) (*secrets, error) {
	m, err := key.NewMaster()
	if err != nil {
		return nil, err
	}
	id := key.NewID()
	if err := putKey(ctx, st, m, opts.Password, opts.KDF, cfg, id, clock(opts.Now)()); err != nil {
		return nil, err
	}
	return newSecrets(m, cfg.Encryption, id)
}

func putKey(ctx context.Context, st store.Store, m key.Master, password []byte, p key.Params, cfg Config, id string, now time.Time) error {
	if p == (key.Params{}) {
		p = key.DefaultParams
	}
	if len(password) == 0 {
		return errorf(ErrInvalid, "the password is empty")
	}
	data, err := key.Wrap(m, password, p, cfg.ID, id, cfg.Encryption, now)
	if err != nil {
		return errorf(ErrInvalid, "%v", err)
	}
	if err := st.Put(ctx, keyName(id), data); err != nil {
		return fmt.Errorf("write key %s: %w", id, err)
	}
	return nil
}

// KeyInfo describes one key object.
type KeyInfo struct {
	ID        string
	CreatedAt time.Time
	Params    key.Params
	// Current is set on the key that opened the repository.
	Current bool
	// Problem says why the key object cannot be read; the rest is empty.
	Problem string
}

// readKeys reads every key object, cheapest to open first; those that
// cannot be read come last, with their problem.
func readKeys(ctx context.Context, st store.Store) ([]KeyInfo, map[string]*key.Object, error) {
	var ids []string
	err := st.List(ctx, "keys/", func(info store.Info) error {
		if id := strings.TrimPrefix(info.Name, "keys/"); isKeyID(id) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list keys: %w", err)
	}
	infos := make([]KeyInfo, 0, len(ids))
	objs := map[string]*key.Object{}
	for _, id := range ids {
		data, err := readBounded(ctx, st, keyName(id), "key", key.MaxObjectSize, -1)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, nil, err
		}
		var o *key.Object
		if err == nil {
			o, err = key.Decode(data)
		}
		if err != nil {
			infos = append(infos, KeyInfo{ID: id, Problem: err.Error()})
			continue
		}
		objs[id] = o
		infos = append(infos, KeyInfo{ID: id, CreatedAt: o.CreatedAt, Params: o.Params})
	}
	sort.SliceStable(infos, func(i, j int) bool {
		a, b := infos[i], infos[j]
		if (a.Problem == "") != (b.Problem == "") {
			return a.Problem == ""
		}
		if a.Params.Cost() != b.Params.Cost() {
			return a.Params.Cost() < b.Params.Cost()
		}
		return a.ID < b.ID
	})
	return infos, objs, nil
}

// unlock opens the master key of an encrypted repository with the password
// of opts.
func unlock(ctx context.Context, st store.Store, cfg Config, opts Options) (*secrets, error) {
	if opts.Password == nil {
		return nil, errorf(ErrPassword, "%s is encrypted and no password was given", st.Location())
	}
	infos, objs, err := readKeys(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("open the repository at %s: %w", st.Location(), err)
	}
	if len(objs) == 0 {
		if len(infos) > 0 {
			return nil, errorf(ErrCorrupt, "%s is encrypted and none of its %d keys can be read (%s: %s)",
				st.Location(), len(infos), infos[0].ID, infos[0].Problem)
		}
		return nil, errorf(ErrCorrupt, "%s is encrypted and has no key: without one, nothing in it can be read", st.Location())
	}
	password, err := opts.Password(ctx)
	if err != nil {
		return nil, err
	}
	for i, k := range infos {
		if i == maxKeys || k.Problem != "" {
			break
		}
		m, err := objs[k.ID].Unwrap(password, cfg.ID, k.ID, cfg.Encryption)
		if err == nil {
			return newSecrets(m, cfg.Encryption, k.ID)
		}
		if errors.Is(err, key.ErrOtherAEAD) {
			// The password is right and the config names another AEAD
			// than the keys were made for: it was changed. Reading with it
			// would find everything damaged, and writing with it would
			// seal what a right config cannot open.
			return nil, errorf(ErrCorrupt, "%s/config was changed: key %s opens with the password, but %v; dropback neither reads nor writes with that config",
				st.Location(), k.ID, err)
		}
	}
	return nil, errorf(ErrPassword, "wrong password: no key of the repository at %s opens with it", st.Location())
}

// checkPlain refuses to open a repository whose config says it is not
// encrypted while it holds keys (its config was replaced: going on would
// write backups in plain), or one whose upgrade is under way.
func checkPlain(ctx context.Context, st store.Store, cfg Config) error {
	if _, err := st.Stat(ctx, upgradeConfigName); err == nil {
		return errorf(ErrLocked, "%s is being upgraded to an encrypted repository, or an upgrade was cut short: run `dropback repo upgrade` to finish it", st.Location())
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("open the repository at %s: %w", st.Location(), err)
	}
	if k, err := anyObjectUnder(ctx, st, "keys/"); err != nil {
		return fmt.Errorf("open the repository at %s: %w", st.Location(), err)
	} else if k != "" {
		return errorf(ErrCorrupt, "%s/config says the repository is not encrypted, but it holds keys (%s): the config was replaced; dropback does not write backups in plain into an encrypted repository",
			st.Location(), k)
	}
	return nil
}

func anyObjectUnder(ctx context.Context, st store.Store, prefix string) (string, error) {
	found := ""
	stop := errors.New("found")
	err := st.List(ctx, prefix, func(info store.Info) error {
		found = info.Name
		return stop
	})
	if err != nil && !errors.Is(err, stop) {
		return "", err
	}
	return found, nil
}

// Keys lists the repository's keys, cheapest to open first, and marks the
// one that opened it.
func (r *Repo) Keys(ctx context.Context) ([]KeyInfo, error) {
	if r.sec == nil {
		return nil, errorf(ErrInvalid, "the repository at %s is not encrypted: it has no keys", r.raw.Location())
	}
	infos, _, err := readKeys(ctx, r.raw)
	if err != nil {
		return nil, err
	}
	for i := range infos {
		infos[i].Current = infos[i].ID == r.sec.keyID
	}
	return infos, nil
}

// AddKey writes a new key object that opens the repository with password,
// with Argon2id parameters p (zero: key.DefaultParams), and returns its ID.
func (r *Repo) AddKey(ctx context.Context, password []byte, p key.Params) (string, error) {
	infos, err := r.Keys(ctx)
	if err != nil {
		return "", err
	}
	if len(infos) >= maxKeys {
		return "", errorf(ErrInvalid, "the repository has %d keys, the most it can have; remove one first", len(infos))
	}
	id := key.NewID()
	if err := putKey(ctx, r.raw, r.sec.master, password, p, r.cfg, id, r.now()); err != nil {
		return "", err
	}
	return id, nil
}

// RemoveKey deletes a key object. The last key that can be read, and the
// key that opened the repository, are never removed: the first would leave
// nothing able to read the repository, the second might.
//
// It holds the gc lease while it looks and deletes, so that two removals at
// once (each opened with the key the other removes) cannot both see a key
// that stays, and leave none.
func (r *Repo) RemoveKey(ctx context.Context, id string) error {
	return r.underKeyLease(ctx, "key-remove", func(ctx context.Context) error { return r.removeKey(ctx, id) })
}

// underKeyLease runs do under the gc lease, as an operation of kind: a
// command that removes a key holds it while it looks and deletes, so that
// no two of them at once (each opened with a key the other removes) both
// count on a key that then goes.
func (r *Repo) underKeyLease(ctx context.Context, kind string, do func(context.Context) error) error {
	op, err := r.Begin(ctx, kind, 0)
	if err != nil {
		return err
	}
	defer op.End()
	ctx = op.Context()
	gen, err := r.acquireLease(ctx, op, time.Minute)
	if err != nil {
		return err
	}
	defer r.releaseLease(ctx, gen)
	return do(ctx)
}

func (r *Repo) removeKey(ctx context.Context, id string) error {
	infos, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	found, readable := false, 0
	for _, k := range infos {
		found = found || k.ID == id
		if k.Problem == "" {
			readable++
		}
	}
	switch {
	case !found:
		return errorf(ErrNotFound, "no key %s", id)
	case id == r.sec.keyID:
		return errorf(ErrInvalid, "key %s is the one this password opened: add another key, open the repository with its password, then remove this one (or use `repo key passwd`)", id)
	case readable <= 1:
		return errorf(ErrInvalid, "key %s is the last key of the repository: without it nothing in it can be read", id)
	}
	if err := r.raw.Delete(ctx, keyName(id)); err != nil {
		return fmt.Errorf("remove key %s: %w", id, err)
	}
	return nil
}

// ChangePassword writes a new key that opens with password, then removes
// the key that opened the repository: the password changes, the master
// key and every object stay. It returns the new key's ID.
//
// The new key is written and the old one removed under the gc lease, as
// RemoveKey removes one: a removal at once counts the old key as staying
// only while it does.
func (r *Repo) ChangePassword(ctx context.Context, password []byte, p key.Params) (string, error) {
	var id string
	err := r.underKeyLease(ctx, "key-passwd", func(ctx context.Context) error {
		var err error
		if id, err = r.AddKey(ctx, password, p); err != nil {
			return err
		}
		old := r.sec.keyID
		r.sec.keyID = id
		if err := r.raw.Delete(ctx, keyName(old)); err != nil {
			return fmt.Errorf("new key %s written; remove the old key %s: %w", id, old, err)
		}
		return nil
	})
	return id, err
}

// contentID names an image index, index segment or pack by its plain
// bytes: the BLAKE3 of them, keyed with the name key when the repository is
// encrypted, so that names say nothing of content to those without it.
func (r *Repo) contentID(data []byte) ID {
	if r.sec == nil {
		return contentID(data)
	}
	h, _ := blake3.NewKeyed(r.sec.sub.Name[:])
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	return id
}

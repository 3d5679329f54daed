package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/store"
)

// Upgrading a repository that is not encrypted rewrites it into an
// encrypted one in the same place, keeping every backup, host and action
// under its ID (docs/format.md, "Upgrading to an encrypted repository").
// Every step is create-once or deletes only what another copy makes
// redundant, so an upgrade cut short anywhere is finished by running it
// again, and no backup is ever without a readable copy:
//
//  1. The encrypted repository's first key, then its config as
//     upgrade/config. From then on only Upgrade opens the repository.
//  2. Every backup's chunks are copied into encrypted packs, under the new
//     secret chunk key; its image indexes and index segments follow, then
//     its manifest, sealed under its final name, as upgrade/backups/<id>.
//     Each host's record goes in as its next revision; each action's latest
//     state as upgrade/actions/<id>/0000000001.
//  3. Each staged object takes its final name: the old object is deleted,
//     the staged bytes put in its place, the staged copy deleted.
//  4. Every object in plain is deleted, but the markers whose name is all
//     they say.
//  5. The config is replaced by upgrade/config, which goes last.

// upgradeConfigName is the config of the encrypted repository a plain one
// is being upgraded to: while it is there, the repository is being upgraded
// and only Upgrade opens it.
const upgradeConfigName = "upgrade/config"

// upgradeOp is the kind of the upgrade's own operation: the one that may
// begin while upgrade/config is there.
const upgradeOp = "upgrade"

const stagePrefix = "upgrade/"

// UpgradeOptions are the settings of an upgrade.
type UpgradeOptions struct {
	// Password opens the encrypted repository's first key, or the key of
	// an upgrade that was cut short.
	Password []byte
	// KDF are the Argon2id parameters of the first key; zero means
	// key.DefaultParams.
	KDF key.Params
	// Cipher is the AEAD the encrypted repository seals with (a crypt
	// name); "" means crypt.Default. An upgrade cut short goes on with
	// the AEAD it started with.
	Cipher string
	// Progress, if not nil, counts the chunks' bytes as an "upgrade" job.
	Progress *progress.Counter
	Options
}

// UpgradeResult says what an upgrade did.
type UpgradeResult struct {
	FromVersion                int
	Encryption                 string // the AEAD of the encrypted repository
	Backups, Hosts, Actions    int
	CopiedBytes, CopiedChunks  int64
	AlreadyEncrypted, Finished bool
}

// Upgrade rewrites the plain repository in st into an encrypted one, or
// finishes an upgrade that was cut short. It runs as the only operation on
// the repository: it holds the gc lease, and fails with ErrLocked when
// another operation is running.
func Upgrade(ctx context.Context, st store.Store, opts UpgradeOptions) (*UpgradeResult, error) {
	if len(opts.Password) == 0 {
		return nil, errorf(ErrPassword, "an encrypted repository needs a password")
	}
	cfg, err := readConfig(ctx, st)
	hasConfig := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	next, err := readUpgradeConfig(ctx, st)
	if err != nil {
		return nil, err
	}
	switch {
	case !hasConfig && next == nil:
		return nil, noConfig(ctx, st)
	case hasConfig && cfg.Encryption != EncryptionNone:
		return finishedUpgrade(ctx, st, cfg, next != nil)
	case !hasConfig:
		// Cut short between the old config's deletion and the new one.
		sec, err := upgradeKeys(ctx, st, *next, opts, false)
		if err != nil {
			return nil, err
		}
		return &UpgradeResult{FromVersion: 1, Encryption: next.Encryption, Finished: true}, switchConfig(ctx, st, *next, sec)
	}
	old := openedRepo(st, cfg, chunkKeyOf(cfg), nil, opts.Options)
	op, err := old.Begin(ctx, upgradeOp, 0)
	if err != nil {
		return nil, err
	}
	defer op.End()
	ctx = op.Context()
	gen, err := old.acquireLease(ctx, op, 0)
	if err != nil {
		return nil, err
	}
	defer old.releaseLease(ctx, gen)
	if err := old.aloneIn(ctx, op); err != nil {
		return nil, err
	}
	if err := unrollDeleted(ctx, st); err != nil {
		return nil, err
	}
	if next == nil {
		aead, err := aeadOf(opts.Cipher)
		if err != nil {
			return nil, err
		}
		c := cfg
		c.Version, c.ID, c.ChunkKey, c.Encryption = FormatVersion, key.NewID(), "", aead
		next = &c
	}
	sec, err := upgradeKeys(ctx, st, *next, opts, true)
	if err != nil {
		return nil, err
	}
	// Again, now that upgrade/config is there: an operation that began
	// before it (a long-lived agent's, which opened the repository before
	// the upgrade) is seen here, and one that begins after it refuses. The
	// upgrade is then cut short, to be run again once that one has ended.
	if err := old.aloneIn(ctx, op); err != nil {
		return nil, err
	}
	nr := openedRepo(st, *next, [32]byte{}, sec, opts.Options)
	nr.mem = old.mem // one command, one memory budget
	u := &upgrader{old: old, nr: nr, op: op,
		res: &UpgradeResult{FromVersion: cfg.Version, Encryption: next.Encryption}, ids: map[ID]ID{}, prog: opts.Progress}
	if err := u.run(ctx); err != nil {
		return u.res, err
	}
	u.res.Finished = true
	return u.res, switchConfig(ctx, st, *next, sec)
}

// readConfig reads and checks the config of st.
func readConfig(ctx context.Context, st store.Store) (Config, error) {
	var cfg Config
	data, err := readBounded(ctx, st, "config", "repository config", maxConfigSize, -1)
	if err != nil {
		return cfg, err
	}
	if err := unseal(data, &cfg); err != nil || cfg.Format != FormatName {
		return cfg, errorf(ErrFormat, "%s/config is damaged or not a dropback repository config", st.Location())
	}
	if cfg.Version > FormatVersion {
		return cfg, errorf(ErrFormat, "repository format version %d is newer than this dropback supports (%d); upgrade dropback",
			cfg.Version, FormatVersion)
	}
	return cfg, nil
}

// readUpgradeConfig reads upgrade/config, or nil when there is none.
func readUpgradeConfig(ctx context.Context, st store.Store) (*Config, error) {
	data, err := readBounded(ctx, st, upgradeConfigName, "repository config", maxConfigSize, -1)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := unseal(data, &cfg); err != nil || cfg.Format != FormatName || !crypt.Known(cfg.Encryption) {
		return nil, errorf(ErrCorrupt, "%s/%s, the config of the upgrade under way, is damaged", st.Location(), upgradeConfigName)
	}
	return &cfg, nil
}

func chunkKeyOf(cfg Config) [32]byte {
	var k [32]byte
	if b, err := ParseID(cfg.ChunkKey); err == nil {
		k = b
	}
	return k
}

// finishedUpgrade ends an upgrade whose new config, cfg, is in place: only
// upgrade/config can be left.
func finishedUpgrade(ctx context.Context, st store.Store, cfg Config, leftover bool) (*UpgradeResult, error) {
	if !leftover {
		return &UpgradeResult{AlreadyEncrypted: true, Encryption: cfg.Encryption}, nil
	}
	if err := st.Delete(ctx, upgradeConfigName); err != nil {
		return nil, fmt.Errorf("finish the upgrade: %w", err)
	}
	return &UpgradeResult{FromVersion: 1, Encryption: cfg.Encryption, Finished: true}, nil
}

// aloneIn fails with ErrLocked when an operation other than op runs.
func (r *Repo) aloneIn(ctx context.Context, op *Op) error {
	ops, err := r.runningOps(ctx)
	if err != nil {
		return err
	}
	if _, who, running := oldestStart(ops, op.ID()); running {
		return errorf(ErrLocked, "another operation is running on %s (%s): an upgrade runs alone; let it end, and stop every older dropback that may use the repository",
			r.raw.Location(), who)
	}
	return nil
}

// upgradeKeys writes upgrade/config, which begins the upgrade, then the
// first key; or opens the key of an upgrade that was cut short. With
// create false (the upgrade is past its copies), a key must be there.
func upgradeKeys(ctx context.Context, st store.Store, next Config, opts UpgradeOptions, create bool) (*secrets, error) {
	if create {
		data, err := seal(next)
		if err != nil {
			return nil, err
		}
		if err := st.Put(ctx, upgradeConfigName, data); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("begin the upgrade: %w", err)
		}
		if _, objs, err := readKeys(ctx, st); err != nil {
			return nil, err
		} else if len(objs) == 0 {
			return firstKey(ctx, st, next, InitOptions{Password: opts.Password, KDF: opts.KDF, Options: opts.Options})
		}
	}
	return unlock(ctx, st, next, Options{Password: func(context.Context) ([]byte, error) { return opts.Password, nil }})
}

// switchConfig makes next the repository's config, last of all.
func switchConfig(ctx context.Context, st store.Store, next Config, sec *secrets) error {
	data, err := seal(next)
	if err != nil {
		return err
	}
	if err := st.Delete(ctx, "config"); err != nil {
		return fmt.Errorf("replace the config: %w", err)
	}
	if err := st.Put(ctx, "config", data); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("replace the config: %w", err)
	}
	if err := st.Delete(ctx, upgradeConfigName); err != nil {
		return fmt.Errorf("finish the upgrade: %w", err)
	}
	return nil
}

// opensWith reports whether the object name of st opens with sec's key.
func opensWith(ctx context.Context, st store.Store, sec *secrets, name string) bool {
	data, err := st.Get(ctx, name, 0, -1)
	if err != nil {
		return false
	}
	_, err = sec.cipher.OpenObject(name, data)
	return err == nil
}

// stage writes plain, sealed under the final name, as upgrade/<name>.
func (u *upgrader) stage(ctx context.Context, name string, plain []byte) error {
	err := u.nr.raw.Put(ctx, stagePrefix+name, u.nr.sec.cipher.SealObject(name, plain))
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("upgrade: stage %s: %w", name, err)
	}
	return nil
}

// isPlain reports whether an object's stored bytes are not encrypted.
func isPlain(data []byte) bool { return !bytes.HasPrefix(data, []byte(crypt.ObjectMagic)) }

// upgrader copies a plain repository, old, into an encrypted one, nr, in
// the same store.
type upgrader struct {
	old, nr *Repo
	op      *Op
	res     *UpgradeResult
	prog    *progress.Counter
	ids     map[ID]ID // old chunk ID -> new, of the chunks copied in this run
	oldIdx  *Index
	newIdx  *Index
}

func (u *upgrader) run(ctx context.Context) error {
	for _, step := range []func(context.Context) error{u.copyBackups, u.copyHosts, u.copyActions, u.swap, u.dropPlain} {
		if err := step(ctx); err != nil {
			return err
		}
		if err := u.op.Check(); err != nil {
			return err
		}
	}
	return nil
}

// staged reports whether the object name is in the new repository, at its
// name or staged.
func (u *upgrader) staged(ctx context.Context, name string) bool {
	sec := u.nr.sec
	if opensWith(ctx, u.nr.raw, sec, name) {
		return true
	}
	data, err := u.nr.raw.Get(ctx, stagePrefix+name, 0, -1)
	if err != nil {
		return false
	}
	_, err = sec.cipher.OpenObject(name, data)
	return err == nil
}

// copyBackups copies every backup that is not copied yet.
func (u *upgrader) copyBackups(ctx context.Context) error {
	ms, damaged, err := u.old.ManifestsAndDamage(ctx)
	if err != nil {
		return err
	}
	for id, derr := range damaged {
		if !u.staged(ctx, objectName("backups", id)) {
			return fmt.Errorf("upgrade: backup %d cannot be read (%w); an upgrade keeps every backup, so it stops: run `dropback backups verify`", id, derr)
		}
		u.res.Backups++
	}
	var todo []*Manifest
	var total int64
	for _, m := range ms {
		if u.staged(ctx, objectName("backups", m.ID)) {
			u.res.Backups++
			continue
		}
		todo = append(todo, m)
		for _, d := range m.Disks {
			total += d.SizeBytes
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if u.oldIdx, _, err = u.old.LoadIndex(ctx); err != nil {
		return err
	}
	defer u.oldIdx.release()
	// The new index: what an upgrade cut short copied already. The plain
	// segments do not open with the new key, and are left out.
	if u.newIdx, _, err = u.nr.LoadIndex(ctx); err != nil {
		return err
	}
	defer u.newIdx.release()
	u.prog.Start("upgrade", total)
	for _, m := range todo {
		if err := u.copyBackup(ctx, m); err != nil {
			return fmt.Errorf("upgrade: copy backup %d: %w", m.ID, err)
		}
		u.res.Backups++
	}
	return nil
}

// copyBackup copies one backup's chunks, image indexes and index segments,
// and stages its manifest.
func (u *upgrader) copyBackup(ctx context.Context, m *Manifest) error {
	w := newPackWriter(ctx, u.nr, u.newIdx, 2)
	images := make([]*Image, len(m.Disks))
	defer func() {
		for _, im := range images {
			im.release()
		}
	}()
	for i := range m.Disks {
		im, err := u.copyDisk(ctx, m, i, w)
		if err != nil {
			w.abort()
			return err
		}
		images[i] = im
	}
	segs, err := w.finish()
	if err != nil {
		return err
	}
	nm := *m
	nm.Disks = append([]ManifestDisk(nil), m.Disks...)
	nm.IndexSegments = nil
	for _, s := range segs {
		nm.IndexSegments = append(nm.IndexSegments, s.String())
	}
	for i, im := range images {
		id, err := u.nr.putImage(ctx, im, u.newIdx.condemnedImages)
		if err != nil {
			return err
		}
		nm.Disks[i].Image = id.String()
	}
	data, err := seal(&nm)
	if err != nil {
		return err
	}
	return u.stage(ctx, objectName("backups", m.ID), data)
}

// copyDisk copies the chunks of disk i of m that the new repository lacks
// and returns the disk's image in new chunk IDs. A blob keeps its
// compressed bytes; it is sealed under its new ID.
func (u *upgrader) copyDisk(ctx context.Context, m *Manifest, i int, w *packWriter) (*Image, error) {
	im, err := u.old.LoadDiskImage(ctx, m, i)
	if err != nil {
		return nil, err
	}
	defer im.release()
	out, err := u.nr.newImage(im.Size)
	if err != nil {
		return nil, err
	}
	if err := u.copyChunks(ctx, im, out, w); err != nil {
		out.release()
		return nil, err
	}
	return out, nil
}

// copyChunks copies the chunks of im that the new repository lacks, and
// sets out's chunks to their new IDs.
func (u *upgrader) copyChunks(ctx context.Context, im, out *Image, w *packWriter) error {
	hOld, hNew := newChunkHasher(u.old.key), newChunkHasher(u.nr.key)
	var blob, plain []byte
	for j, c := range im.Chunks {
		if c.IsZero() {
			u.prog.AddSkipped(int64(im.chunkLen(j)))
			continue
		}
		if n, ok := u.ids[c]; ok {
			out.Chunks[j] = n
			u.prog.AddSkipped(int64(im.chunkLen(j)))
			continue
		}
		pack, loc, ok := u.oldIdx.lookup(c)
		if !ok {
			return fmt.Errorf("%w: chunk %s is missing from the repository", ErrCorrupt, c)
		}
		if cap(blob) < int(loc.length) {
			blob = make([]byte, loc.length)
		}
		n, err := store.ReadAt(ctx, u.old.st, packName(pack), blob[:loc.length], int64(loc.offset))
		if err != nil {
			return fmt.Errorf("read pack %s: %w", pack, err)
		}
		if n != int(loc.length) {
			return fmt.Errorf("%w: pack %s is truncated", ErrCorrupt, pack)
		}
		p, err := u.old.openBlob(blob[:n], loc, c, hOld, &plain)
		if err != nil {
			return fmt.Errorf("chunk %s in pack %s: %w", c, pack, err)
		}
		id := hNew.sum(p)
		u.ids[c], out.Chunks[j] = id, id
		u.prog.AddRead(int64(len(p)))
		if u.newIdx.Has(id) || w.seen(id) {
			continue
		}
		sealed := u.nr.sec.cipher.SealBlob(nil, id, blob[:n])
		if err := w.add(id, sealed, int(loc.raw), loc.flags|flagEncrypted); err != nil {
			return err
		}
		u.res.CopiedBytes += int64(len(p))
		u.res.CopiedChunks++
	}
	return nil
}

// copyHosts writes each host's latest record as its next revision,
// encrypted.
func (u *upgrader) copyHosts(ctx context.Context) error {
	revs, _, err := u.old.revisions(ctx, "hosts", nil)
	if err != nil {
		return err
	}
	for id, list := range revs {
		u.res.Hosts++
		if opensWith(ctx, u.nr.raw, u.nr.sec, hostObject(id, list[len(list)-1])) {
			continue
		}
		h, err := u.old.readHost(ctx, id, list)
		if err != nil {
			return fmt.Errorf("upgrade: host %d: %w", id, err)
		}
		if h.Rev >= MaxID {
			return noIDLeft("revision of host "+h.Name, "its revision")
		}
		h.Rev++
		data, err := seal(h)
		if err != nil {
			return err
		}
		if err := u.nr.st.Put(ctx, hostObject(id, h.Rev), data); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("upgrade: host %d: %w", id, err)
		}
	}
	return nil
}

// copyActions stages each action's latest state as its first.
func (u *upgrader) copyActions(ctx context.Context) error {
	latest, err := u.old.latestRevisions(ctx, "actions", nil)
	if err != nil {
		return err
	}
	for id := range latest {
		name := actionObject(id, 1)
		if u.staged(ctx, name) {
			u.res.Actions++
			continue
		}
		a, err := u.old.Action(ctx, id)
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
			continue // unreadable before: it goes with the plain objects
		}
		if err != nil {
			return err
		}
		a.N = 1
		data, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if err := u.stage(ctx, name, data); err != nil {
			return err
		}
		u.res.Actions++
	}
	return nil
}

// swap gives each staged object its final name.
func (u *upgrader) swap(ctx context.Context) error {
	var staged []string
	err := u.nr.raw.List(ctx, stagePrefix, func(info store.Info) error {
		if info.Name != upgradeConfigName {
			staged = append(staged, info.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upgrade: list staged objects: %w", err)
	}
	raw := u.nr.raw
	for _, s := range staged {
		final := strings.TrimPrefix(s, stagePrefix)
		data, err := raw.Get(ctx, s, 0, -1)
		if err != nil {
			return fmt.Errorf("upgrade: read %s: %w", s, err)
		}
		if _, err := u.nr.sec.cipher.OpenObject(final, data); err != nil {
			return errorf(ErrCorrupt, "upgrade: the staged %s does not decrypt: run `dropback repo upgrade` again after `backups verify`", s)
		}
		if !opensWith(ctx, raw, u.nr.sec, final) {
			if err := u.clearFinal(ctx, final); err != nil {
				return err
			}
			if err := raw.Put(ctx, final, data); err != nil {
				return fmt.Errorf("upgrade: write %s: %w", final, err)
			}
		}
		if err := raw.Delete(ctx, s); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	return nil
}

// clearFinal deletes the plain object at final, and for the first state of
// an action, every state of it.
func (u *upgrader) clearFinal(ctx context.Context, final string) error {
	names := []string{final}
	if id, ok := parseObjectID(final, "actions"); ok {
		names = names[:0]
		err := u.nr.raw.List(ctx, fmt.Sprintf("actions/%010d/", id), func(info store.Info) error {
			names = append(names, info.Name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	for _, n := range names {
		if err := u.nr.raw.Delete(ctx, n); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	return nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dropback/dropback/pkg/store"
)

// plainKinds are the prefixes whose objects an upgrade deletes when they
// are not encrypted, and what it does with each: drop it, or keep its
// record, encrypted under the same name (claims and gc records, whose loss
// between the two steps would cost only a repeated scheduled backup or a
// line of repo stats; fates, whose loss leaves a snapshot to its
// snapshots/ marker and an expired backup to be expired again).
var plainKinds = []struct {
	prefix string
	keep   bool
}{
	{"backups/", false}, {"hosts/", false}, {"actions/", false}, {"images/", false}, {"index/", false}, {"schedule/idle/", false},
	{"damaged/", false}, {"gc/condemned/", false}, {"index-replaced/", false}, {"image-repaired/", false}, {"running/", false}, {"catalog/", false},
	{"claims/", true}, {"gc/done/", true}, {"fate/", true},
}

// dropPlain deletes every object of the plain repository that the
// encrypted one does not use, and encrypts the records it keeps. Markers
// whose name is all they say (deleted/, snapshots/, a released gc lease)
// stay as they are; so do the gc leases, which say who holds gc and are
// judged by age when they cannot be read.
func (u *upgrader) dropPlain(ctx context.Context) error {
	raw := u.nr.raw
	if err := u.dropPlainPacks(ctx); err != nil {
		return err
	}
	for _, k := range plainKinds {
		var names []string
		err := raw.List(ctx, k.prefix, func(info store.Info) error {
			names = append(names, info.Name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("upgrade: list %s: %w", k.prefix, err)
		}
		for _, name := range names {
			if strings.HasPrefix(name, "running/"+u.op.ID()) {
				continue // this upgrade's own marker
			}
			head, err := raw.Get(ctx, name, 0, 8)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil && !errors.Is(err, store.ErrNotObject) {
				return fmt.Errorf("upgrade: read %s: %w", name, err)
			}
			if err == nil && !isPlain(head) && k.prefix != "index-replaced/" {
				continue
			}
			if err := u.dropOne(ctx, name, k.keep && err == nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// unrollDeleted turns each plain deleted-ranges record back into the
// deleted/ markers it stands for, then deletes it: markers are plain in an
// encrypted repository too, and a crash between the two leaves markers and
// record both, which count as one. The next gc rolls them up again. It is
// done before the upgrade writes anything else. A record it cannot read is
// left as it is.
func unrollDeleted(ctx context.Context, raw store.Store) error {
	var names []string
	err := raw.List(ctx, "deleted-ranges/", func(info store.Info) error {
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("upgrade: list deleted-ranges: %w", err)
	}
	for _, name := range names {
		data, err := readBounded(ctx, raw, name, "deleted-ranges record", maxDeletedRangesSize, -1)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		if !isPlain(data) {
			continue
		}
		var d deletedRanges
		problem := ""
		if err := unseal(data, &d); err != nil {
			problem = sealProblem(err)
		}
		rs, err := d.ranges()
		if problem == "" && err != nil {
			problem = err.Error()
		}
		if problem != "" {
			// What it held is unknown either way: it stays as it is,
			// damage that verify names in the encrypted repository too
			// (and the IDs it held read as lost), and gc deletes no
			// deleted/ marker while it is there.
			continue
		}
		for _, g := range rs {
			for id := g.From; id <= g.To; id++ {
				err := raw.Put(ctx, objectName("deleted", id), []byte("{}\n"))
				if err != nil && !errors.Is(err, store.ErrExists) {
					return fmt.Errorf("upgrade: write %s: %w", objectName("deleted", id), err)
				}
			}
		}
		if err := raw.Delete(ctx, name); err != nil {
			return fmt.Errorf("upgrade: delete %s: %w", name, err)
		}
	}
	return nil
}

// dropOne deletes a plain object; with keep, it writes it again encrypted.
func (u *upgrader) dropOne(ctx context.Context, name string, keep bool) error {
	var data []byte
	if keep {
		var err error
		if data, err = u.nr.raw.Get(ctx, name, 0, maxMarker+1); err != nil {
			return fmt.Errorf("upgrade: read %s: %w", name, err)
		}
	}
	if err := u.nr.raw.Delete(ctx, name); err != nil {
		return fmt.Errorf("upgrade: delete %s: %w", name, err)
	}
	if keep && len(data) <= maxMarker {
		if err := u.nr.st.Put(ctx, name, data); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("upgrade: write %s: %w", name, err)
		}
	}
	return nil
}

// dropPlainPacks deletes every pack whose trailer is not sealed.
func (u *upgrader) dropPlainPacks(ctx context.Context) error {
	raw := u.nr.raw
	var plain []string
	err := raw.List(ctx, "packs/", func(info store.Info) error {
		tail, err := raw.Get(ctx, info.Name, max(0, info.Size-8), 8)
		if err == nil && string(tail) == packSealedMagic {
			return nil
		}
		plain = append(plain, info.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("upgrade: list packs: %w", err)
	}
	for _, name := range plain {
		if err := raw.Delete(ctx, name); err != nil {
			return fmt.Errorf("upgrade: delete %s: %w", name, err)
		}
	}
	return nil
}

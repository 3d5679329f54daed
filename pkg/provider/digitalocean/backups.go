package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// ListBackups lists the backups of one Droplet, or of every Droplet when host
// is "", oldest first. Each Droplet's backups are paged to the end.
func (p *Provider) ListBackups(ctx context.Context, host string) ([]provider.Backup, error) {
	return p.listImages(ctx, host, "backups", p.client.Droplets.Backups)
}

type imageLister func(ctx context.Context, dropletID int, opt *godo.ListOptions) ([]godo.Image, *godo.Response, error)

func (p *Provider) listImages(ctx context.Context, host, what string, list imageLister) ([]provider.Backup, error) {
	var droplets []godo.Droplet
	if host == "" {
		all, err := p.droplets(ctx)
		if err != nil {
			return nil, err
		}
		droplets = all
	} else {
		d, err := p.resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		droplets = []godo.Droplet{*d}
	}
	return p.imagesOf(ctx, droplets, what, list)
}

// imagesOf lists the images of the given Droplets, each paged to the end,
// oldest first.
func (p *Provider) imagesOf(ctx context.Context, droplets []godo.Droplet, what string, list imageLister) ([]provider.Backup, error) {
	out := []provider.Backup{}
	for i := range droplets {
		d := &droplets[i]
		images, err := listAll(ctx, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Image, *godo.Response, error) {
			return list(ctx, d.ID, opt)
		})
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", what, dropletName(d), p.apiErr(err))
		}
		for j := range images {
			out = append(out, toBackup(&images[j], d))
		}
	}
	sortBackups(out)
	return out, nil
}

// sortBackups orders backups oldest first, by ID among equals.
func sortBackups(bs []provider.Backup) {
	sort.SliceStable(bs, func(i, j int) bool {
		if !bs[i].CreatedAt.Equal(bs[j].CreatedAt) {
			return bs[i].CreatedAt.Before(bs[j].CreatedAt)
		}
		return bs[i].ID < bs[j].ID
	})
}

// GetBackup returns a backup (or snapshot) image by ID, with the Droplet it
// belongs to when that Droplet still exists; for a snapshot of a destroyed
// Droplet, that Droplet's ID alone.
func (p *Provider) GetBackup(ctx context.Context, id int) (*provider.Backup, error) {
	if err := checkID("backup", id); err != nil {
		return nil, err
	}
	img, resp, err := p.client.Images.GetByID(ctx, id)
	if err != nil {
		return nil, p.apiErr(err)
	}
	if img == nil {
		return nil, unexpected(resp, "it holds no image")
	}
	if img.Type != provider.TypeBackup && img.Type != provider.TypeSnapshot {
		return nil, fmt.Errorf("image %d is a %s image, not a backup: %w", id, printable(img.Type, 40), provider.ErrNotFound)
	}
	droplets, err := p.droplets(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the droplet of backup %d: %w", id, err)
	}
	var owner *godo.Droplet
	for i := range droplets {
		if slices.Contains(droplets[i].BackupIDs, id) || slices.Contains(droplets[i].SnapshotIDs, id) {
			owner = &droplets[i]
			break
		}
	}
	b := toBackup(img, owner)
	if owner == nil && img.Type == provider.TypeSnapshot {
		// A snapshot outlives its Droplet; the snapshot object still says
		// which it was.
		if b.HostID, err = p.snapshotOwner(ctx, id); err != nil {
			return nil, fmt.Errorf("find the droplet of snapshot %d: %w", id, err)
		}
		if b.HostID > 0 {
			b.ResourceID, b.ResourceType = strconv.Itoa(b.HostID), "droplet"
		}
	}
	return &b, nil
}

// FindBackup resolves a backup of a Droplet ("latest" is its newest
// backup), or a bare image ID when host is "".
func (p *Provider) FindBackup(ctx context.Context, host, ref string) (*provider.Backup, error) {
	if host == "" {
		id, err := strconv.Atoi(ref)
		if err != nil || id < 1 {
			return nil, fmt.Errorf("backup %q: %w: give a backup ID, or a Droplet and an ID or latest", printable(ref, 64), provider.ErrInvalid)
		}
		return p.GetBackup(ctx, id)
	}
	d, err := p.resolve(ctx, host)
	if errors.Is(err, provider.ErrNotFound) {
		// A snapshot outlives its Droplet, which is still named by its ID.
		if id, aerr := strconv.Atoi(ref); aerr == nil && id > 0 {
			if b, gerr := p.GetBackup(ctx, id); gerr == nil && b.HostID != 0 && strconv.Itoa(b.HostID) == host {
				return b, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if id, aerr := strconv.Atoi(ref); aerr == nil && id > 0 &&
		!slices.Contains(d.BackupIDs, id) && !slices.Contains(d.SnapshotIDs, id) {
		b, err := p.GetBackup(ctx, id)
		if err == nil && b.HostID != 0 {
			return nil, fmt.Errorf("backup %d is of Droplet %s, not of %s: %w", id, nameOr(b.HostName, b.HostID), dropletName(d), provider.ErrInvalid)
		}
	}
	id, err := p.pickBackup(ctx, d, ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	return p.GetBackup(ctx, id)
}

// nameOr is a Droplet's name, or its ID when the name is unknown.
func nameOr(name string, id int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(id)
}

// ConvertBackup turns a backup into a snapshot with the image action
// `convert`. It returns the action in progress.
func (p *Provider) ConvertBackup(ctx context.Context, id int) (*provider.Action, error) {
	if err := checkID("backup", id); err != nil {
		return nil, err
	}
	a, resp, err := p.client.ImageActions.Convert(ctx, id)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return actionOf(a, resp)
}

// DeleteSnapshot deletes a snapshot. DigitalOcean refuses to delete a backup
// this way (an error wrapping ErrInvalid).
func (p *Provider) DeleteSnapshot(ctx context.Context, id int) error {
	if err := checkID("snapshot", id); err != nil {
		return err
	}
	if _, err := p.client.Snapshots.Delete(ctx, strconv.Itoa(id)); err != nil {
		return p.apiErr(err)
	}
	return nil
}

// toBackup converts an image; d, when known, is the Droplet it belongs to.
// Every field of the image is kept, under the API's names.
func toBackup(img *godo.Image, d *godo.Droplet) provider.Backup {
	b := provider.Backup{
		ID:            img.ID,
		Name:          img.Name,
		Type:          img.Type,
		Distribution:  img.Distribution,
		Public:        img.Public,
		Regions:       img.Regions,
		Status:        img.Status,
		CreatedAt:     parseTime(img.Created),
		SizeGigabytes: img.SizeGigaBytes,
		MinDiskSize:   img.MinDiskSize,
		Description:   img.Description,
		Tags:          img.Tags,
		ErrorMessage:  img.ErrorMessage,
	}
	if img.Slug != "" {
		b.Slug = &img.Slug
	}
	if b.Status == "" {
		b.Status = "available"
	}
	if d != nil {
		b.HostID, b.HostName = d.ID, d.Name
		b.ResourceID, b.ResourceType = strconv.Itoa(d.ID), "droplet"
	}
	return b
}

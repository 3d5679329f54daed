package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// RestoreBackup restores a Droplet from one of its backups (or snapshots):
// in place with the droplet action `restore`, or, with req.ToNew, by creating
// a new Droplet from the image. It returns the action in progress.
//
// In place needs req.Force, since it overwrites the Droplet's disk; a new
// Droplet needs req.Size and req.Region, and may come from a snapshot of a
// Droplet that no longer exists (req.Host its ID). req.To (a local path) is impossible:
// DigitalOcean images cannot be downloaded.
func (p *Provider) RestoreBackup(ctx context.Context, req provider.RestoreRequest) (*provider.RestoreResult, error) {
	if req.To != "" {
		return nil, p.unsupported("backups restore --to",
			"DigitalOcean backups cannot be downloaded; restore in place, or to a new Droplet with --to-new NAME --size SIZE --region REGION")
	}
	if req.ToNew == "" && !req.Force {
		return nil, fmt.Errorf("%w: an in-place restore overwrites the Droplet's disk; pass --force, or restore to a new Droplet with --to-new",
			provider.ErrConfirm)
	}
	if req.ToNew != "" && (req.Size == "" || req.Region == "") {
		return nil, fmt.Errorf("%w: a new Droplet needs --size and --region (e.g. --size s-1vcpu-1gb --region nyc3)",
			provider.ErrInvalid)
	}
	sshKeys, err := sshKeys(req.SSHKeys)
	if err != nil {
		return nil, err
	}
	d, err := p.resolve(ctx, req.Host)
	if req.ToNew != "" && errors.Is(err, provider.ErrNotFound) {
		return p.restoreGone(ctx, req, sshKeys, err)
	}
	if err != nil {
		return nil, err
	}
	imageID, err := p.pickBackup(ctx, d, req.Backup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	if req.ToNew != "" {
		return p.restoreToNew(ctx, imageID, req, sshKeys)
	}
	a, resp, err := p.client.DropletActions.Restore(ctx, d.ID, imageID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	action, err := actionOf(a, resp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	return &provider.RestoreResult{Action: *action, BackupID: imageID, HostID: d.ID}, nil
}

// pickBackup resolves a backup argument for Droplet d: "latest" is its
// newest backup, an integer must be one of its backups or snapshots.
func (p *Provider) pickBackup(ctx context.Context, d *godo.Droplet, arg string) (int, error) {
	arg = strings.TrimSpace(arg)
	if arg == "latest" || arg == "" {
		backups, err := p.imagesOf(ctx, []godo.Droplet{*d}, "backups", p.client.Droplets.Backups)
		if err != nil {
			return 0, err
		}
		if len(backups) == 0 {
			return 0, fmt.Errorf("latest backup: %w: the Droplet has no backups", provider.ErrNotFound)
		}
		return backups[len(backups)-1].ID, nil
	}
	id, err := strconv.Atoi(arg)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("backup %q: %w: want a backup ID or \"latest\"", arg, provider.ErrInvalid)
	}
	if !slices.Contains(d.BackupIDs, id) && !slices.Contains(d.SnapshotIDs, id) {
		return 0, fmt.Errorf("backup %d: %w: it is not a backup or snapshot of this Droplet (see `dropback backups list %d`)",
			id, provider.ErrNotFound, d.ID)
	}
	return id, nil
}

// restoreToNew creates a Droplet from image imageID and returns its create
// action.
func (p *Provider) restoreToNew(ctx context.Context, imageID int, req provider.RestoreRequest, keys []godo.DropletCreateSSHKey) (*provider.RestoreResult, error) {
	tags := req.Tags
	if tags == nil {
		tags = []string{}
	}
	create := &godo.DropletCreateRequest{
		Name:    req.ToNew,
		Region:  req.Region,
		Size:    req.Size,
		Image:   godo.DropletCreateImage{ID: imageID},
		SSHKeys: keys,
		Tags:    tags,
		VPCUUID: req.VPCUUID,
	}
	d, resp, err := p.client.Droplets.Create(ctx, create)
	if err != nil {
		return nil, fmt.Errorf("create droplet %s from backup %d: %w", printable(req.ToNew, 64), imageID, p.apiErr(err))
	}
	if d == nil {
		return nil, fmt.Errorf("create droplet %s from backup %d: %w", printable(req.ToNew, 64), imageID, unexpected(resp, "it holds no droplet"))
	}
	res := &provider.RestoreResult{BackupID: imageID, HostID: d.ID}
	actionID := 0
	if resp != nil && resp.Links != nil && len(resp.Links.Actions) > 0 {
		actionID = resp.Links.Actions[0].ID
	}
	if actionID == 0 {
		// No link to the create action: it is among the Droplet's.
		a, err := p.createAction(ctx, d.ID)
		if err != nil {
			return nil, fmt.Errorf("created %s; find its create action: %w", dropletName(d), err)
		}
		res.Action = *a
		return res, nil
	}
	a, aresp, err := p.client.Actions.Get(ctx, actionID)
	if err == nil && a == nil {
		err = unexpected(aresp, "it holds no action")
	} else if err != nil {
		err = p.apiErr(err)
	}
	if err != nil {
		return nil, fmt.Errorf("created %s; get its create action %d: %w", dropletName(d), actionID, err)
	}
	res.Action = *toAction(a)
	return res, nil
}

// createAction finds the create action of a new Droplet among its actions.
func (p *Provider) createAction(ctx context.Context, dropletID int) (*provider.Action, error) {
	as, err := listAll(ctx, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Action, *godo.Response, error) {
		return p.client.Droplets.Actions(ctx, dropletID, opt)
	})
	if err != nil {
		return nil, p.apiErr(err)
	}
	for i := range as {
		if as[i].Type == "create" {
			return toAction(&as[i]), nil
		}
	}
	return nil, fmt.Errorf("%w: droplet %d lists no create action; follow it with `dropback hosts get %d`",
		ErrUnexpectedAnswer, dropletID, dropletID)
}

// restoreGone creates a new Droplet from a snapshot of a Droplet that no
// longer exists: req.Host is that Droplet's ID, req.Backup the snapshot's,
// as `dropback snapshots list` shows them. notFound is the error of looking
// the Droplet up, returned when it is not that.
func (p *Provider) restoreGone(ctx context.Context, req provider.RestoreRequest, keys []godo.DropletCreateSSHKey, notFound error) (*provider.RestoreResult, error) {
	hostID, herr := strconv.Atoi(strings.TrimSpace(req.Host))
	imageID, ierr := strconv.Atoi(strings.TrimSpace(req.Backup))
	if herr != nil || ierr != nil || hostID < 1 || imageID < 1 {
		return nil, notFound
	}
	owner, err := p.snapshotOwner(ctx, imageID)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", imageID, err)
	}
	if owner != hostID {
		return nil, notFound
	}
	res, err := p.restoreToNew(ctx, imageID, req, keys)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// sshKeys reads --ssh-keys values: integer IDs or fingerprints. The list is
// never nil, because the API refuses "ssh_keys": null.
func sshKeys(vals []string) ([]godo.DropletCreateSSHKey, error) {
	keys := []godo.DropletCreateSSHKey{}
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if id, err := strconv.Atoi(v); err == nil {
			if id < 1 {
				return nil, fmt.Errorf("ssh key %q: %w", v, provider.ErrInvalid)
			}
			keys = append(keys, godo.DropletCreateSSHKey{ID: id})
			continue
		}
		keys = append(keys, godo.DropletCreateSSHKey{Fingerprint: v})
	}
	return keys, nil
}

package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// TakeSnapshot implements provider.SnapshotTaker with the droplet action
// `snapshot`, as doctl compute droplet-action snapshot does. A name of ""
// becomes the Droplet's name and the time, as the control panel names them.
func (p *Provider) TakeSnapshot(ctx context.Context, host, name string) (*provider.Action, error) {
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = fmt.Sprintf("%s-%s", d.Name, time.Now().UTC().Format("20060102-150405"))
	}
	a, resp, err := p.client.DropletActions.Snapshot(ctx, d.ID, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	return actionOf(a, resp)
}

// ListSnapshots lists the snapshots of one Droplet, or every Droplet
// snapshot of the account when host is "", oldest first. The account's list
// (/v2/snapshots?resource_type=droplet) holds those of destroyed Droplets
// too; so does a host given by the ID of a Droplet that no longer exists.
func (p *Provider) ListSnapshots(ctx context.Context, host string) ([]provider.Backup, error) {
	if host == "" {
		return p.accountSnapshots(ctx, 0)
	}
	d, err := p.resolve(ctx, host)
	if id, idErr := strconv.Atoi(host); idErr == nil && errors.Is(err, provider.ErrNotFound) {
		return p.accountSnapshots(ctx, id) // a destroyed Droplet's
	}
	if err != nil {
		return nil, err
	}
	return p.imagesOf(ctx, []godo.Droplet{*d}, "snapshots", p.client.Droplets.Snapshots)
}

// accountSnapshots lists the account's Droplet snapshots, of dropletID
// only unless it is 0, with their Droplet's name where it still exists.
func (p *Provider) accountSnapshots(ctx context.Context, dropletID int) ([]provider.Backup, error) {
	snaps, err := listAll(ctx, p.client.Snapshots.ListDroplet)
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", p.apiErr(err))
	}
	droplets, err := p.droplets(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[int]string, len(droplets))
	for _, d := range droplets {
		names[d.ID] = d.Name
	}
	out := []provider.Backup{}
	for i := range snaps {
		b := fromSnapshot(&snaps[i])
		if b.ID < 1 || (dropletID != 0 && b.HostID != dropletID) {
			continue
		}
		b.HostName = names[b.HostID]
		out = append(out, b)
	}
	sortBackups(out)
	return out, nil
}

// fromSnapshot converts a snapshot object of /v2/snapshots.
func fromSnapshot(s *godo.Snapshot) provider.Backup {
	id, _ := strconv.Atoi(s.ID)
	b := provider.Backup{
		ID: id, Name: s.Name, Type: provider.TypeSnapshot, Status: "available",
		Regions: s.Regions, CreatedAt: parseTime(s.Created), MinDiskSize: s.MinDiskSize,
		SizeGigabytes: s.SizeGigaBytes, Tags: s.Tags,
		ResourceID: s.ResourceID, ResourceType: s.ResourceType,
	}
	if s.ResourceType == "droplet" {
		b.HostID, _ = strconv.Atoi(s.ResourceID)
	}
	return b
}

// snapshotOwner returns the ID of the Droplet a snapshot was taken of, which
// may no longer exist, or 0 when the API does not say.
func (p *Provider) snapshotOwner(ctx context.Context, id int) (int, error) {
	s, _, err := p.client.Snapshots.Get(ctx, strconv.Itoa(id))
	if err != nil {
		return 0, p.apiErr(err)
	}
	if s == nil || s.ResourceType != "droplet" {
		return 0, nil
	}
	owner, _ := strconv.Atoi(s.ResourceID)
	return owner, nil
}

package digitalocean

import (
	"context"
	"fmt"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// EnableBackupsByTag implements provider.TagPolicies with enable_backups on
// the tag (POST /v2/droplets/actions?tag_name=), as doctl sends it: the
// default policy, since the API takes none by tag.
func (p *Provider) EnableBackupsByTag(ctx context.Context, tag string) ([]provider.Action, error) {
	if _, _, err := p.tagged(ctx, tag); err != nil {
		return nil, err
	}
	as, _, err := p.client.DropletActions.EnableBackupsByTag(ctx, tag)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return actionsOf(as), nil
}

// DisableBackupsByTag implements provider.TagPolicies with disable_backups
// on the tag. DigitalOcean deletes the backups of every Droplet it turns
// off: when any has backups, opts.DeleteBackups is needed.
func (p *Provider) DisableBackupsByTag(ctx context.Context, tag string, opts provider.DisableOptions) ([]provider.Action, error) {
	ds, backups, err := p.tagged(ctx, tag)
	if err != nil {
		return nil, err
	}
	if backups > 0 && !opts.DeleteBackups {
		return nil, fmt.Errorf("the %d Droplet(s) tagged %s have %d backup(s), which DigitalOcean deletes when backups are disabled; convert any you want to keep with `dropback backups convert <id>`, then pass --force: %w",
			len(ds), printable(tag, 64), backups, provider.ErrConfirm)
	}
	as, _, err := p.client.DropletActions.DisableBackupsByTag(ctx, tag)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return actionsOf(as), nil
}

// tagged lists the Droplets with a tag and counts their backups. No
// Droplet with the tag is an error wrapping ErrNotFound.
func (p *Provider) tagged(ctx context.Context, tag string) ([]godo.Droplet, int, error) {
	if tag == "" {
		return nil, 0, fmt.Errorf("%w: a tag is required", provider.ErrInvalid)
	}
	ds, err := listAll(ctx, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Droplet, *godo.Response, error) {
		return p.client.Droplets.ListByTag(ctx, tag, opt)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("droplets tagged %s: %w", printable(tag, 64), p.apiErr(err))
	}
	if len(ds) == 0 {
		return nil, 0, fmt.Errorf("tag %s: %w: no Droplet has it", printable(tag, 64), provider.ErrNotFound)
	}
	backups := 0
	for _, d := range ds {
		backups += len(d.BackupIDs)
	}
	return ds, backups, nil
}

func actionsOf(as []godo.Action) []provider.Action {
	out := make([]provider.Action, 0, len(as))
	for i := range as {
		out = append(out, *toAction(&as[i]))
	}
	return out
}

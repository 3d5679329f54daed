package digitalocean

import (
	"context"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// GetAction returns an action as DigitalOcean reports it. An errored action
// is data, not an error; see ActionErr.
func (p *Provider) GetAction(ctx context.Context, id int) (*provider.Action, error) {
	if err := checkID("action", id); err != nil {
		return nil, err
	}
	a, resp, err := p.client.Actions.Get(ctx, id)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return actionOf(a, resp)
}

// actionOf converts the action an answer holds, refusing an answer that
// holds none.
func actionOf(a *godo.Action, resp *godo.Response) (*provider.Action, error) {
	if a == nil {
		return nil, unexpected(resp, "it holds no action")
	}
	return toAction(a), nil
}

// ListActions lists every action of the account, paged to the end, in the
// order DigitalOcean gives them (newest first).
func (p *Provider) ListActions(ctx context.Context) ([]provider.Action, error) {
	as, err := listAll(ctx, p.client.Actions.List)
	if err != nil {
		return nil, p.apiErr(err)
	}
	out := make([]provider.Action, 0, len(as))
	for i := range as {
		out = append(out, *toAction(&as[i]))
	}
	return out, nil
}

func toAction(a *godo.Action) *provider.Action {
	if a == nil {
		return &provider.Action{}
	}
	out := &provider.Action{
		ID:           a.ID,
		Type:         a.Type,
		Status:       a.Status,
		ResourceID:   a.ResourceID,
		ResourceType: a.ResourceType,
		Region:       a.RegionSlug,
	}
	if a.StartedAt != nil {
		out.StartedAt = a.StartedAt.UTC()
	}
	if a.CompletedAt != nil && !a.CompletedAt.IsZero() {
		t := a.CompletedAt.UTC()
		out.CompletedAt = &t
	}
	if out.Region == "" && a.Region != nil {
		out.Region = a.Region.Slug
	}
	return out
}

// InitRepo is engine-only.
func (p *Provider) InitRepo(ctx context.Context, opts provider.RepoInitOptions) (*provider.RepoStats, error) {
	return nil, p.unsupported("repo init",
		"DigitalOcean keeps backups in your account, with no repository to create; use `--context local` for the engine's repository")
}

// RepoStats is engine-only.
func (p *Provider) RepoStats(ctx context.Context) (*provider.RepoStats, error) {
	return nil, p.unsupported("repo stats",
		"DigitalOcean has no repository; list backups with `dropback backups list` and their sizes, or use `--context local`")
}

// PruneBackups is engine-only: DigitalOcean keeps backups by the plan.
func (p *Provider) PruneBackups(ctx context.Context, host string, opts provider.PruneOptions) ([]provider.Backup, error) {
	return nil, p.unsupported("backups prune",
		"DigitalOcean keeps backups for the retention of the plan; choose another with `dropback policy set <droplet> --plan`")
}

// GC is engine-only.
func (p *Provider) GC(ctx context.Context, opts provider.GCOptions) (*provider.GCResult, error) {
	return nil, p.unsupported("repo gc",
		"DigitalOcean expires backups by the plan's retention by itself; delete snapshots you no longer need with `dropback snapshots delete <id>`")
}

// RunDue is engine-only: DigitalOcean runs backups on its own schedule.
func (p *Provider) RunDue(ctx context.Context, opts provider.RunOptions) (*provider.RunReport, error) {
	return nil, p.unsupported("run --due",
		"DigitalOcean runs backups and retention on its own schedule; set it with `dropback policy set <droplet>`")
}

package digitalocean

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// EnableBackups turns on scheduled backups of a Droplet with the droplet
// action `enable_backups`. With no policy fields, DigitalOcean's default
// policy applies; otherwise a plan is required and the policy is checked
// against the account's supported_policies before the Droplet is looked up.
func (p *Provider) EnableBackups(ctx context.Context, host string, req provider.PolicyRequest) (*provider.Action, error) {
	if err := checkStatic(req); err != nil {
		return nil, err
	}
	if req.Plan == nil && req.Weekday == nil && req.Hour == nil && req.RetentionDays == nil {
		d, err := p.resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		a, resp, err := p.client.DropletActions.EnableBackups(ctx, d.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
		}
		return actionOf(a, resp)
	}
	supported, err := p.supported(ctx)
	if err != nil {
		return nil, err
	}
	if req.Plan == nil {
		return nil, fmt.Errorf("%w: --plan is required with --weekday, --hour or --retention-days (one of %s)",
			provider.ErrInvalid, supported.names())
	}
	body, err := supported.policy(nil, req)
	if err != nil {
		return nil, err
	}
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	a, err := p.postAction(ctx, d.ID, body.request("enable_backups"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	return a, nil
}

// DisableBackups turns off scheduled backups with the droplet action
// `disable_backups`. DigitalOcean then deletes the Droplet's existing
// backups, so opts.KeepBackups is refused (convert backups to snapshots
// first) and a Droplet that has backups needs opts.DeleteBackups, else the
// error wraps ErrConfirm.
func (p *Provider) DisableBackups(ctx context.Context, host string, opts provider.DisableOptions) (*provider.Action, error) {
	if opts.KeepBackups {
		return nil, &provider.UnsupportedError{Verb: "backups disable --keep-backups", Context: printable(p.opts.Context, 64), Only: "engine",
			Alternative: "DigitalOcean deletes a Droplet's backups when backups are disabled; keep the ones you need by converting them to snapshots with `dropback backups convert <id>` first"}
	}
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	if n := len(d.BackupIDs); n > 0 && !opts.DeleteBackups {
		return nil, fmt.Errorf("%s: %w: DigitalOcean deletes its %d backup(s); convert any you want to keep with `dropback backups convert <id>`, then disable with --force",
			dropletName(d), provider.ErrConfirm, n)
	}
	a, resp, err := p.client.DropletActions.DisableBackups(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	return actionOf(a, resp)
}

// SetPolicy changes the backup policy of a Droplet whose backups are enabled,
// with the droplet action `change_backup_policy`. Fields left nil keep their
// current value (see plans.policy); the fields given are checked against
// supported_policies before the Droplet is looked up.
func (p *Provider) SetPolicy(ctx context.Context, host string, req provider.PolicyRequest) (*provider.Action, error) {
	if err := checkStatic(req); err != nil {
		return nil, err
	}
	if req.Plan == nil && req.Weekday == nil && req.Hour == nil && req.RetentionDays == nil {
		return nil, fmt.Errorf("%w: nothing to change; give --plan, --weekday, --hour or --retention-days", provider.ErrInvalid)
	}
	supported, err := p.supported(ctx)
	if err != nil {
		return nil, err
	}
	if err := supported.checkGiven(req); err != nil {
		return nil, err
	}
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	cur, resp, err := p.client.Droplets.GetBackupPolicy(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	if cur == nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), unexpected(resp, "it holds no policy"))
	}
	if !cur.BackupEnabled {
		return nil, fmt.Errorf("%s: %w: its backups are not enabled; enable them with `dropback backups enable %d --plan ...`",
			dropletName(d), provider.ErrInvalid, d.ID)
	}
	body, err := supported.policy(cur.BackupPolicy, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	a, err := p.postAction(ctx, d.ID, body.request("change_backup_policy"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	return a, nil
}

// postAction starts a droplet action. It sends req as godo's own action
// helpers do, and exists because they cannot send a retention.
func (p *Provider) postAction(ctx context.Context, dropletID int, req *godo.ActionRequest) (*provider.Action, error) {
	r, err := p.client.NewRequest(ctx, http.MethodPost, fmt.Sprintf("v2/droplets/%d/actions", dropletID), req)
	if err != nil {
		return nil, p.apiErr(err)
	}
	var root struct {
		Action *godo.Action `json:"action"`
	}
	resp, err := p.client.Do(ctx, r, &root)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return actionOf(root.Action, resp)
}

// GetPolicy returns a Droplet's backup policy.
func (p *Provider) GetPolicy(ctx context.Context, host string) (*provider.HostPolicy, error) {
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	pol, resp, err := p.client.Droplets.GetBackupPolicy(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	if pol == nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), unexpected(resp, "it holds no policy"))
	}
	hp := toHostPolicy(d.ID, pol)
	hp.HostName = d.Name
	return &hp, nil
}

// ListPolicies returns the backup policy of every Droplet, by Droplet ID.
func (p *Provider) ListPolicies(ctx context.Context) ([]provider.HostPolicy, error) {
	pols, err := p.policies(ctx)
	if err != nil {
		return nil, err
	}
	droplets, err := p.droplets(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[int]string, len(droplets))
	for _, d := range droplets {
		names[d.ID] = d.Name
	}
	out := make([]provider.HostPolicy, 0, len(pols))
	for id, pol := range pols {
		hp := toHostPolicy(id, pol)
		hp.HostName = names[hp.HostID]
		out = append(out, hp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].HostID < out[j].HostID })
	return out, nil
}

// SupportedPolicies lists the plans the account can choose, as the API
// lists them.
func (p *Provider) SupportedPolicies(ctx context.Context) ([]provider.SupportedPolicy, error) {
	sps, err := p.supported(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]provider.SupportedPolicy, 0, len(sps))
	for _, sp := range sps {
		out = append(out, provider.SupportedPolicy{
			Name:                 sp.Name,
			PossibleWindowStarts: nonNil(sp.PossibleWindowStarts),
			WindowLengthHours:    sp.WindowLengthHours,
			RetentionPeriodDays:  sp.RetentionPeriodDays,
			PossibleDays:         nonNil(sp.PossibleDays),
		})
	}
	return out, nil
}

func (p *Provider) supported(ctx context.Context) (plans, error) {
	sps, _, err := p.client.Droplets.ListSupportedBackupPolicies(ctx)
	if err != nil {
		return nil, fmt.Errorf("supported backup policies: %w", p.apiErr(err))
	}
	out := make([]*godo.SupportedBackupPolicy, 0, len(sps))
	for _, sp := range sps {
		if sp != nil {
			out = append(out, sp)
		}
	}
	return out, nil
}

// policies lists every Droplet's backup policy, paged to the end.
func (p *Provider) policies(ctx context.Context) (map[int]*godo.DropletBackupPolicy, error) {
	type entry struct {
		id  int
		pol *godo.DropletBackupPolicy
	}
	entries, err := listAll(ctx, func(ctx context.Context, opt *godo.ListOptions) ([]entry, *godo.Response, error) {
		page, resp, err := p.client.Droplets.ListBackupPolicies(ctx, opt)
		out := make([]entry, 0, len(page))
		for id, pol := range page {
			out = append(out, entry{id, pol})
		}
		return out, resp, err
	})
	if err != nil {
		return nil, p.apiErr(err)
	}
	all := make(map[int]*godo.DropletBackupPolicy, len(entries))
	for _, e := range entries {
		all[e.id] = e.pol
	}
	return all, nil
}

func toHostPolicy(id int, pol *godo.DropletBackupPolicy) provider.HostPolicy {
	hp := provider.HostPolicy{HostID: id}
	if pol == nil {
		return hp
	}
	hp.BackupEnabled = pol.BackupEnabled
	hp.BackupPolicy = toPolicy(pol.BackupPolicy)
	hp.NextBackupWindow = toWindow(pol.NextBackupWindow)
	return hp
}

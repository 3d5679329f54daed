package digitalocean

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// The backup window starts and weekdays the API accepts at all; each plan
// may allow fewer (see SupportedPolicies).
var (
	windowStarts = []int{0, 4, 8, 12, 16, 20}
	weekdays     = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

// EnableBackups turns on scheduled backups of a Droplet with the droplet
// action `enable_backups`. With no policy fields, DigitalOcean's default
// policy applies; otherwise a plan is required and is sent as backup_policy.
// Values are checked before the Droplet is looked up: hours and weekdays the
// API never accepts without any request, plans against supported_policies.
func (p *Provider) EnableBackups(ctx context.Context, host string, req provider.PolicyRequest) (*provider.Action, error) {
	if err := checkStatic(req); err != nil {
		return nil, err
	}
	var policy *godo.DropletBackupPolicyRequest
	if req.Plan != nil || req.Weekday != nil || req.Hour != nil {
		supported, err := p.supported(ctx)
		if err != nil {
			return nil, err
		}
		if req.Plan == nil {
			return nil, fmt.Errorf("%w: --plan is required with --weekday or --hour (one of %s)",
				provider.ErrInvalid, planNames(supported))
		}
		policy = &godo.DropletBackupPolicyRequest{Plan: *req.Plan, Weekday: upper(req.Weekday), Hour: req.Hour}
		if err := checkSupported(supported, policy); err != nil {
			return nil, err
		}
	}
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var a *godo.Action
	var resp *godo.Response
	if policy == nil {
		a, resp, err = p.client.DropletActions.EnableBackups(ctx, d.ID)
	} else {
		a, resp, err = p.client.DropletActions.EnableBackupsWithPolicy(ctx, d.ID, policy)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	return actionOf(a, resp)
}

// DisableBackups turns off scheduled backups with the droplet action
// `disable_backups`. DigitalOcean then deletes the Droplet's existing
// backups, so opts.KeepBackups is refused (convert backups to snapshots
// first) and a Droplet that has backups needs opts.DeleteBackups, else the
// error wraps ErrConfirm.
func (p *Provider) DisableBackups(ctx context.Context, host string, opts provider.DisableOptions) (*provider.Action, error) {
	if opts.KeepBackups {
		return nil, p.unsupported("backups disable --keep-backups",
			"DigitalOcean deletes a Droplet's backups when backups are disabled; keep the ones you need by converting them to snapshots with `dropback backups convert <id>` first")
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
// current value.
func (p *Provider) SetPolicy(ctx context.Context, host string, req provider.PolicyRequest) (*provider.Action, error) {
	if err := checkStatic(req); err != nil {
		return nil, err
	}
	if req.Plan == nil && req.Weekday == nil && req.Hour == nil {
		return nil, fmt.Errorf("%w: nothing to change; give --plan, --weekday or --hour", provider.ErrInvalid)
	}
	supported, err := p.supported(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkGiven(supported, req); err != nil {
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
	policy := merge(supported, cur.BackupPolicy, req)
	if err := checkSupported(supported, policy); err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), err)
	}
	a, resp, err := p.client.DropletActions.ChangeBackupPolicy(ctx, d.ID, policy)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dropletName(d), p.apiErr(err))
	}
	return actionOf(a, resp)
}

// merge applies req over the current policy. A weekday kept from the current
// policy is dropped when the new plan has no weekdays.
func merge(supported []*godo.SupportedBackupPolicy, cur *godo.DropletBackupPolicyConfig, req provider.PolicyRequest) *godo.DropletBackupPolicyRequest {
	out := &godo.DropletBackupPolicyRequest{}
	if cur != nil {
		out.Plan, out.Weekday = cur.Plan, cur.Weekday
		out.Hour = godo.PtrTo(cur.Hour)
	}
	if req.Plan != nil {
		out.Plan = *req.Plan
	}
	if req.Hour != nil {
		out.Hour = req.Hour
	}
	if req.Weekday != nil {
		out.Weekday = upper(req.Weekday)
	} else if sp := findPlan(supported, out.Plan); sp != nil && len(sp.PossibleDays) == 0 {
		out.Weekday = ""
	}
	return out
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

// SupportedPolicies lists the plans the account can choose.
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

func (p *Provider) supported(ctx context.Context) ([]*godo.SupportedBackupPolicy, error) {
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

// checkStatic rejects, without any request, values the API never accepts.
func checkStatic(req provider.PolicyRequest) error {
	if req.RetentionDays != nil {
		return fmt.Errorf("--retention-days: %w: DigitalOcean sets retention by plan (daily keeps 7 days, weekly 28); choose a plan, see `dropback policy supported`",
			provider.ErrInvalid)
	}
	if req.Plan != nil && strings.TrimSpace(*req.Plan) == "" {
		return fmt.Errorf("plan: %w: it is empty", provider.ErrInvalid)
	}
	if req.Hour != nil && !slices.Contains(windowStarts, *req.Hour) {
		return fmt.Errorf("hour %d: %w: valid hours are %s (UTC start of a 4-hour window)",
			*req.Hour, provider.ErrInvalid, joinInts(windowStarts))
	}
	if req.Weekday != nil && !slices.Contains(weekdays, upper(req.Weekday)) {
		return fmt.Errorf("weekday %q: %w: valid weekdays are %s", *req.Weekday, provider.ErrInvalid, strings.Join(weekdays, ", "))
	}
	return nil
}

// checkGiven checks the fields a request sets against the supported plans.
func checkGiven(supported []*godo.SupportedBackupPolicy, req provider.PolicyRequest) error {
	if req.Plan == nil {
		return nil
	}
	return checkSupported(supported, &godo.DropletBackupPolicyRequest{Plan: *req.Plan, Weekday: upper(req.Weekday), Hour: req.Hour})
}

// checkSupported checks a policy against the supported plans: the plan must
// be listed, and the hour and weekday among those it allows.
func checkSupported(supported []*godo.SupportedBackupPolicy, pol *godo.DropletBackupPolicyRequest) error {
	sp := findPlan(supported, pol.Plan)
	if sp == nil {
		return fmt.Errorf("plan %q: %w: valid plans are %s", pol.Plan, provider.ErrInvalid, planNames(supported))
	}
	if pol.Hour != nil && len(sp.PossibleWindowStarts) > 0 && !slices.Contains(sp.PossibleWindowStarts, *pol.Hour) {
		return fmt.Errorf("hour %d: %w: plan %s allows hours %s", *pol.Hour, provider.ErrInvalid, sp.Name, joinInts(sp.PossibleWindowStarts))
	}
	if pol.Weekday != "" && !slices.Contains(sp.PossibleDays, pol.Weekday) {
		if len(sp.PossibleDays) == 0 {
			return fmt.Errorf("weekday %s: %w: plan %s runs every day and takes no weekday", pol.Weekday, provider.ErrInvalid, sp.Name)
		}
		return fmt.Errorf("weekday %s: %w: plan %s allows %s", pol.Weekday, provider.ErrInvalid, sp.Name, strings.Join(sp.PossibleDays, ", "))
	}
	return nil
}

func findPlan(supported []*godo.SupportedBackupPolicy, name string) *godo.SupportedBackupPolicy {
	for _, sp := range supported {
		if sp.Name == name {
			return sp
		}
	}
	return nil
}

func planNames(supported []*godo.SupportedBackupPolicy) string {
	names := make([]string, 0, len(supported))
	for _, sp := range supported {
		names = append(names, sp.Name)
	}
	if len(names) == 0 {
		return "(none: the account lists no supported policies)"
	}
	return strings.Join(names, ", ")
}

func upper(s *string) string {
	if s == nil {
		return ""
	}
	return strings.ToUpper(strings.TrimSpace(*s))
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

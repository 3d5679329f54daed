package digitalocean

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// basicPlans are DigitalOcean's basic plans, the two its API description
// enumerates for backup_policy.plan: their retention is fixed (daily keeps
// 7 days, weekly 28, as supported_policies says). Every other plan the API
// lists is a usage-based plan, whose retention is chosen when it is set:
// dropback sends it as backup_policy.retention_period_days, as DigitalOcean's
// control panel does (DigitalOcean's description still marks the field
// read-only; see docs/doctl.md).
var basicPlans = []string{"daily", "weekly"}

// defaultWeekday is the weekday a plan with weekdays gets when none is
// given or kept, if the plan allows it; else the plan's first.
const defaultWeekday = "SUN"

// plans is the account's supported_policies: every plan name, window start,
// weekday and retention dropback accepts comes from it.
type plans []*godo.SupportedBackupPolicy

func (ps plans) find(name string) *godo.SupportedBackupPolicy {
	for _, sp := range ps {
		if sp.Name == name {
			return sp
		}
	}
	return nil
}

func (ps plans) names() string {
	names := make([]string, 0, len(ps))
	for _, sp := range ps {
		names = append(names, sp.Name)
	}
	if len(names) == 0 {
		return "(none: the account lists no supported policies)"
	}
	return strings.Join(names, ", ")
}

// choosesRetention reports whether a plan takes a chosen retention.
func choosesRetention(sp *godo.SupportedBackupPolicy) bool {
	return !slices.Contains(basicPlans, sp.Name)
}

// retentionPlans names the plans that take a chosen retention.
func (ps plans) retentionPlans() string {
	var names []string
	for _, sp := range ps {
		if choosesRetention(sp) {
			names = append(names, sp.Name)
		}
	}
	if len(names) == 0 {
		return "(none: this account offers no plan that takes a retention)"
	}
	return strings.Join(names, ", ")
}

// policyBody is a backup_policy as dropback sends it.
type policyBody struct {
	plan      *godo.SupportedBackupPolicy
	weekday   string
	hour      *int
	retention *int
}

// request is the droplet action typ with the policy: the fields godo's
// helpers send, in the same form, and retention_period_days when set. An
// empty weekday is sent as "" for a basic plan, as godo and doctl send it,
// and left out for a usage-based plan, which the API refuses it for.
func (b policyBody) request(typ string) *godo.ActionRequest {
	pol := map[string]any{"plan": b.plan.Name}
	if b.weekday != "" || !choosesRetention(b.plan) {
		pol["weekday"] = b.weekday
	}
	if b.hour != nil {
		pol["hour"] = *b.hour
	}
	if b.retention != nil {
		pol["retention_period_days"] = *b.retention
	}
	return &godo.ActionRequest{"type": typ, "backup_policy": pol}
}

// checkStatic rejects, without any request, values no plan can take.
func checkStatic(req provider.PolicyRequest) error {
	if req.Plan != nil && strings.TrimSpace(*req.Plan) == "" {
		return fmt.Errorf("plan: %w: it is empty", provider.ErrInvalid)
	}
	if req.RetentionDays != nil && *req.RetentionDays < 1 {
		return fmt.Errorf("retention %d: %w: a retention is a number of days, 1 or more", *req.RetentionDays, provider.ErrInvalid)
	}
	return nil
}

// checkGiven checks the fields a change sets against the plan it names, if
// it names one, before anything else is read.
func (ps plans) checkGiven(req provider.PolicyRequest) error {
	if req.Plan == nil {
		return nil
	}
	_, err := ps.policy(nil, req)
	return err
}

// policy is the policy to send: req applied over cur (nil for a Droplet
// whose backups are being enabled), and checked against the plans.
//
// Fields req leaves nil keep their current value. When the plan changes, a
// weekday is dropped if the new plan has none, kept if the new plan allows
// it, else becomes SUN (or the plan's first weekday); a retention chosen
// with --retention-days (one that differs from its plan's) is kept when the
// new plan takes one, and a usage-based plan keeps its retention when only
// the window changes. A basic plan's fixed retention is never sent.
func (ps plans) policy(cur *godo.DropletBackupPolicyConfig, req provider.PolicyRequest) (policyBody, error) {
	var b policyBody
	name := ""
	if cur != nil {
		name = cur.Plan
		b.hour = godo.PtrTo(cur.Hour)
	}
	if req.Plan != nil {
		name = strings.TrimSpace(*req.Plan)
	}
	if b.plan = ps.find(name); b.plan == nil {
		return b, fmt.Errorf("plan %q: %w: valid plans are %s", name, provider.ErrInvalid, ps.names())
	}
	if req.Hour != nil {
		b.hour = req.Hour
	}
	b.weekday = ps.weekday(b.plan, cur, req)
	b.retention = ps.retention(b.plan, cur, req)
	if err := ps.check(b); err != nil {
		return b, err
	}
	if !choosesRetention(b.plan) {
		b.retention = nil
	}
	return b, nil
}

func (ps plans) weekday(sp *godo.SupportedBackupPolicy, cur *godo.DropletBackupPolicyConfig, req provider.PolicyRequest) string {
	switch {
	case upper(req.Weekday) != "":
		return upper(req.Weekday)
	case len(sp.PossibleDays) == 0:
		return ""
	case cur != nil && slices.Contains(sp.PossibleDays, cur.Weekday):
		return cur.Weekday
	case slices.Contains(sp.PossibleDays, defaultWeekday):
		return defaultWeekday
	}
	return sp.PossibleDays[0]
}

func (ps plans) retention(sp *godo.SupportedBackupPolicy, cur *godo.DropletBackupPolicyConfig, req provider.PolicyRequest) *int {
	if req.RetentionDays != nil {
		return req.RetentionDays
	}
	if cur == nil || cur.RetentionPeriodDays < 1 || !choosesRetention(sp) {
		return nil
	}
	if cur.Plan == sp.Name {
		return godo.PtrTo(cur.RetentionPeriodDays)
	}
	if old := ps.find(cur.Plan); old != nil && cur.RetentionPeriodDays != old.RetentionPeriodDays {
		return godo.PtrTo(cur.RetentionPeriodDays) // chosen: it follows the Droplet
	}
	return nil
}

// check checks a policy against its plan: the hour and weekday among those
// it allows, and a retention only where it takes one, or a basic plan's
// own.
func (ps plans) check(b policyBody) error {
	sp := b.plan
	if b.hour != nil && !slices.Contains(sp.PossibleWindowStarts, *b.hour) {
		return fmt.Errorf("hour %d: %w: plan %s allows hours %s (UTC start of a %d-hour window)",
			*b.hour, provider.ErrInvalid, sp.Name, joinInts(sp.PossibleWindowStarts), sp.WindowLengthHours)
	}
	if b.weekday != "" && !slices.Contains(sp.PossibleDays, b.weekday) {
		if len(sp.PossibleDays) == 0 {
			return fmt.Errorf("weekday %s: %w: plan %s runs every day and takes no weekday", printable(b.weekday, 20), provider.ErrInvalid, sp.Name)
		}
		return fmt.Errorf("weekday %s: %w: plan %s allows %s", printable(b.weekday, 20), provider.ErrInvalid, sp.Name, strings.Join(sp.PossibleDays, ", "))
	}
	if b.retention != nil && !choosesRetention(sp) {
		if *b.retention != sp.RetentionPeriodDays {
			return fmt.Errorf("retention %d: %w: plan %s keeps backups %d days, as DigitalOcean's basic plans have it: --retention-days takes %d with it; the plans that take a retention are %s (see `dropback policy supported`)",
				*b.retention, provider.ErrInvalid, sp.Name, sp.RetentionPeriodDays, sp.RetentionPeriodDays, ps.retentionPlans())
		}
	}
	return nil
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

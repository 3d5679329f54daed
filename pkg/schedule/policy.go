package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Plan names: DigitalOcean's. The sub-daily ones are DigitalOcean's
// usage-based plans (intra_daily_4h is the name public sources show; the
// 12- and 6-hour names follow it).
const (
	PlanDaily          = "daily"
	PlanWeekly         = "weekly"
	PlanIntraDaily12h  = "intra_daily_12h"
	PlanIntraDaily6h   = "intra_daily_6h"
	PlanIntraDaily4h   = "intra_daily_4h"
	legacyPlanEvery12h = "every-12h"
	legacyPlanEvery6h  = "every-6h"
	legacyPlanEvery4h  = "every-4h"
)

// legacyPlans maps the names the engine's sub-daily plans had before they
// took DigitalOcean's to those: policies stored under them, and scripts
// that give them, keep working.
var legacyPlans = map[string]string{
	legacyPlanEvery12h: PlanIntraDaily12h,
	legacyPlanEvery6h:  PlanIntraDaily6h,
	legacyPlanEvery4h:  PlanIntraDaily4h,
}

// Limits of a policy.
const (
	// WindowLength is the length of a backup window. A plan whose period is
	// shorter would have a shorter window; none is.
	WindowLength = 4 * time.Hour
	// MinRetentionDays and MaxRetentionDays bound Policy.RetentionDays.
	MinRetentionDays = 1
	MaxRetentionDays = 365
	// DefaultWeekday is the weekday a weekly policy gets when none is given.
	DefaultWeekday = "SUN"
)

// ErrInvalid is wrapped by every error that rejects a policy or a change to
// one. The error's message names the valid values.
var ErrInvalid = errors.New("invalid backup policy")

// plan is one row of the plan table.
type plan struct {
	name          string
	period        time.Duration
	retentionDays int
	takesWeekday  bool
}

// plans is the plan table, in the order `policy supported` lists it. The
// intra-daily plans keep 7 days by default, as the daily plan does: a week
// of history, at the price of 14, 28 or 42 backups.
var plans = []plan{
	{name: PlanDaily, period: 24 * time.Hour, retentionDays: 7},
	{name: PlanWeekly, period: 7 * 24 * time.Hour, retentionDays: 28, takesWeekday: true},
	{name: PlanIntraDaily12h, period: 12 * time.Hour, retentionDays: 7},
	{name: PlanIntraDaily6h, period: 6 * time.Hour, retentionDays: 7},
	{name: PlanIntraDaily4h, period: 4 * time.Hour, retentionDays: 7},
}

// windowStarts are the hours (UTC) a window may start at.
var windowStarts = []int{0, 4, 8, 12, 16, 20}

// weekdays are the weekday names, indexed by time.Weekday.
var weekdays = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

func lookupPlan(name string) (plan, bool) {
	name = CanonicalPlan(name)
	for _, pl := range plans {
		if pl.name == name {
			return pl, true
		}
	}
	return plan{}, false
}

// Plans returns the plan names, in the order `policy supported` lists them.
func Plans() []string {
	names := make([]string, len(plans))
	for i, pl := range plans {
		names[i] = pl.name
	}
	return names
}

// WindowStarts returns the hours (UTC) at which a window may start.
func WindowStarts() []int { return slices.Clone(windowStarts) }

// Weekdays returns the weekday names a weekly policy takes, SUN first.
func Weekdays() []string { return slices.Clone(weekdays) }

// Policy is a host's backup policy. The JSON names are the DigitalOcean
// API's backup_policy fields.
type Policy struct {
	// Plan is one of Plans().
	Plan string `json:"plan"`
	// Weekday is SUN..SAT for the weekly plan and empty for every other plan.
	Weekday string `json:"weekday"`
	// Hour is the hour (UTC) a window starts at, one of WindowStarts(). For
	// the intra-daily plans it anchors the series: intra_daily_6h at hour 4
	// has windows at 4, 10, 16 and 22 h.
	Hour int `json:"hour"`
	// RetentionDays is how long a backup is kept, 1 to 365 days.
	RetentionDays int `json:"retention_period_days"`
}

// Defaults returns the default policy of a plan: hour 0, the plan's
// retention, and SUN for the weekly plan. An unknown plan gives an error
// wrapping ErrInvalid.
func Defaults(planName string) (Policy, error) {
	pl, ok := lookupPlan(planName)
	if !ok {
		return Policy{}, invalid(unknownPlan(planName))
	}
	p := Policy{Plan: pl.name, RetentionDays: pl.retentionDays}
	if pl.takesWeekday {
		p.Weekday = DefaultWeekday
	}
	return p, nil
}

// Validate reports whether p is a valid policy. The error wraps ErrInvalid
// and lists every problem found, each naming the valid values.
func (p Policy) Validate() error {
	var problems []string
	pl, ok := lookupPlan(p.Plan)
	if !ok {
		problems = append(problems, unknownPlan(p.Plan))
	}
	if !slices.Contains(windowStarts, p.Hour) {
		problems = append(problems, fmt.Sprintf("invalid hour %d: must be one of %s", p.Hour, joinInts(windowStarts)))
	}
	switch {
	case p.Weekday != "" && !slices.Contains(weekdays, p.Weekday):
		problems = append(problems, fmt.Sprintf("invalid weekday %q: must be one of %s", p.Weekday, strings.Join(weekdays, ", ")))
	case ok && !pl.takesWeekday && p.Weekday != "":
		problems = append(problems, "a weekday applies only to the weekly plan")
	case ok && pl.takesWeekday && p.Weekday == "":
		problems = append(problems, "the weekly plan needs a weekday: one of "+strings.Join(weekdays, ", "))
	}
	if p.RetentionDays < MinRetentionDays || p.RetentionDays > MaxRetentionDays {
		problems = append(problems, fmt.Sprintf("invalid retention %d: must be %d to %d days", p.RetentionDays, MinRetentionDays, MaxRetentionDays))
	}
	if len(problems) > 0 {
		return invalid(problems...)
	}
	return nil
}

// Period is the time between two windows' starts: 24 h for daily, 7 days for
// weekly, N hours for intra_daily_Nh.
func (p Policy) Period() time.Duration { return p.resolve().period }

// WindowLength is the length of the policy's windows: WindowLength, or the
// period when that is shorter.
func (p Policy) WindowLength() time.Duration { return min(WindowLength, p.Period()) }

// Retention is how long a backup is kept.
func (p Policy) Retention() time.Duration {
	return time.Duration(p.resolve().retentionDays) * 24 * time.Hour
}

// String formats p for messages, e.g. "weekly SUN 04:00 UTC, kept 28 days".
func (p Policy) String() string {
	day := ""
	if p.Weekday != "" {
		day = p.Weekday + " "
	}
	return fmt.Sprintf("%s %s%02d:00 UTC, kept %d days", p.Plan, day, p.Hour, p.RetentionDays)
}

// Change changes some fields of a policy; nil fields are left as they are.
// It carries the values of --plan, --weekday, --hour and --retention-days.
type Change struct {
	Plan          *string
	Weekday       *string
	Hour          *int
	RetentionDays *int
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool {
	return c.Plan == nil && c.Weekday == nil && c.Hour == nil && c.RetentionDays == nil
}

// New returns the policy that `backups enable` sets: the defaults of the
// plan in c (daily if none) with the other fields of c applied.
func New(c Change) (Policy, error) {
	name := PlanDaily
	if c.Plan != nil {
		name = normalizePlan(*c.Plan)
	}
	p, err := Defaults(name)
	if err != nil {
		return Policy{}, err
	}
	return p.Apply(c)
}

// Apply returns p with the fields of c changed, and validated. Plan and
// weekday names are case-insensitive. On error p is returned unchanged with
// an error wrapping ErrInvalid.
//
// When the plan changes, fields that c leaves alone follow the new plan: the
// weekday is dropped when the new plan is not weekly, and becomes
// DefaultWeekday when it is and p had none; the retention becomes the new
// plan's default unless p's was chosen (differs from its plan's default).
func (p Policy) Apply(c Change) (Policy, error) {
	p.Plan = CanonicalPlan(p.Plan)
	q := p
	if c.Plan != nil {
		q.Plan = normalizePlan(*c.Plan)
	}
	newPl, ok := lookupPlan(q.Plan)
	if q.Plan != p.Plan && ok {
		if !newPl.takesWeekday {
			q.Weekday = ""
		} else if q.Weekday == "" {
			q.Weekday = DefaultWeekday
		}
		if oldPl, known := lookupPlan(p.Plan); !known || p.RetentionDays == oldPl.retentionDays || p.RetentionDays == 0 {
			q.RetentionDays = newPl.retentionDays
		}
	}
	if c.Weekday != nil {
		q.Weekday = strings.ToUpper(strings.TrimSpace(*c.Weekday))
	}
	if c.Hour != nil {
		q.Hour = *c.Hour
	}
	if c.RetentionDays != nil {
		q.RetentionDays = *c.RetentionDays
	}
	if err := q.Validate(); err != nil {
		return p, err
	}
	return q, nil
}

// SupportedPolicy is one plan as `policy supported` lists it, named as the
// DigitalOcean API's supported_policies object.
type SupportedPolicy struct {
	Name                 string   `json:"name"`
	PossibleWindowStarts []int    `json:"possible_window_starts"`
	WindowLengthHours    int      `json:"window_length_hours"`
	RetentionPeriodDays  int      `json:"retention_period_days"`
	PossibleDays         []string `json:"possible_days"`
}

// Supported returns the table `policy supported` prints, one row per plan.
// PossibleDays is empty (not nil) for plans that take no weekday.
func Supported() []SupportedPolicy {
	out := make([]SupportedPolicy, len(plans))
	for i, pl := range plans {
		days := []string{}
		if pl.takesWeekday {
			days = Weekdays()
		}
		out[i] = SupportedPolicy{
			Name:                 pl.name,
			PossibleWindowStarts: WindowStarts(),
			WindowLengthHours:    int(min(WindowLength, pl.period) / time.Hour),
			RetentionPeriodDays:  pl.retentionDays,
			PossibleDays:         days,
		}
	}
	return out
}

// resolved is a policy reduced to what window arithmetic needs.
type resolved struct {
	period        time.Duration
	anchor        int64 // Unix seconds of one window start
	retentionDays int
}

// resolve reduces p to its window arithmetic. Callers validate policies when
// they are set; should an invalid one reach here (a damaged record), it is
// read in its nearest valid form rather than crashing a scheduling pass for
// every host: an unknown plan as daily, the hour rounded down to a window
// start, an unknown weekday as SUN, the retention clamped to 1..365 days.
func (p Policy) resolve() resolved {
	pl, ok := lookupPlan(p.Plan)
	if !ok {
		pl, _ = lookupPlan(PlanDaily)
	}
	hour := min(max(p.Hour, 0), 23)
	hour -= hour % 4
	r := resolved{period: pl.period, anchor: int64(hour) * 3600, retentionDays: p.RetentionDays}
	if r.retentionDays == 0 {
		r.retentionDays = pl.retentionDays
	}
	r.retentionDays = min(max(r.retentionDays, MinRetentionDays), MaxRetentionDays)
	if pl.takesWeekday {
		wd := max(slices.Index(weekdays, p.Weekday), 0)
		// 1970-01-01 was a Thursday; the first Sunday is 3 days later.
		r.anchor += int64(3+wd) * 86400
	}
	return r
}

func normalizePlan(s string) string { return CanonicalPlan(strings.ToLower(strings.TrimSpace(s))) }

// CanonicalPlan is a plan's name as the engine stores and shows it: an
// earlier name (every-12h, every-6h, every-4h) becomes DigitalOcean's.
func CanonicalPlan(name string) string {
	if n, ok := legacyPlans[name]; ok {
		return n
	}
	return name
}

func unknownPlan(name string) string {
	return fmt.Sprintf("invalid plan %q: must be one of %s", name, strings.Join(Plans(), ", "))
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// invalidError is a rejected policy: one or more problems, each a full
// sentence naming the valid values.
type invalidError struct{ problems []string }

func invalid(problems ...string) error { return &invalidError{problems: problems} }

func (e *invalidError) Error() string { return strings.Join(e.problems, "; ") }

func (e *invalidError) Unwrap() error { return ErrInvalid }

package cmdutil

import (
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// PolicyFlags are --plan, --weekday, --hour and --retention-days.
type PolicyFlags struct {
	Plan          string
	Weekday       string
	Hour          int
	RetentionDays int
}

// AddPolicyFlags registers the policy flags on cmd. Their help names no
// plan: the plans are the context's (on DigitalOcean, what the account's
// supported_policies lists), which `policy supported` shows.
func AddPolicyFlags(cmd *cobra.Command, p *PolicyFlags) {
	cmd.Flags().StringVar(&p.Plan, "plan", "", "backup `plan`, one that dropback policy supported lists in the context, e.g. daily or weekly")
	cmd.Flags().StringVar(&p.Weekday, "weekday", "", "`day` of a weekly backup: SUN, MON, TUE, WED, THU, FRI or SAT")
	cmd.Flags().IntVar(&p.Hour, "hour", 0, "`hour` (UTC) the 4-hour backup window starts at, one the plan allows (0, 4, 8, 12, 16 or 20)")
	cmd.Flags().IntVar(&p.RetentionDays, "retention-days", 0, "`days` to keep backups, where the plan takes a retention (default: the plan's)")
}

// PolicyRequest returns the request of the policy flags the user set; the
// others stay nil. It reports whether any was set.
func PolicyRequest(cmd *cobra.Command, p *PolicyFlags) (provider.PolicyRequest, bool) {
	var req provider.PolicyRequest
	fl := cmd.Flags()
	if fl.Changed("plan") {
		req.Plan = &p.Plan
	}
	if fl.Changed("weekday") {
		req.Weekday = &p.Weekday
	}
	if fl.Changed("hour") {
		req.Hour = &p.Hour
	}
	if fl.Changed("retention-days") {
		req.RetentionDays = &p.RetentionDays
	}
	set := req.Plan != nil || req.Weekday != nil || req.Hour != nil || req.RetentionDays != nil
	return req, set
}

// DefaultWaitTimeout is --wait-timeout's default.
const DefaultWaitTimeout = 10 * time.Minute

// WaitFlags are --wait and --wait-timeout.
type WaitFlags struct {
	Wait    bool
	Timeout time.Duration
	// Interval is the time between polls, from Factory.PollInterval.
	Interval time.Duration
}

// AddWaitFlags registers --wait and --wait-timeout on an asynchronous verb.
func AddWaitFlags(cmd *cobra.Command, f *Factory, w *WaitFlags) {
	w.Interval = f.PollInterval
	cmd.Flags().BoolVar(&w.Wait, "wait", false, "wait for the action to complete or error")
	w.Timeout = DefaultWaitTimeout
	cmd.Flags().Var((*nonNegativeDuration)(&w.Timeout), "wait-timeout", "give up waiting after this long (exit code 5)")
}

// nonNegativeDuration is a duration flag that refuses a negative value,
// which would otherwise mean "wait for ever" without saying so.
type nonNegativeDuration time.Duration

func (d *nonNegativeDuration) String() string { return time.Duration(*d).String() }
func (d *nonNegativeDuration) Type() string   { return "duration" }

func (d *nonNegativeDuration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d = nonNegativeDuration(v)
	return nil
}

// AddForceFlag registers -f/--force on a destructive verb.
func AddForceFlag(cmd *cobra.Command, force *bool, usage string) {
	cmd.Flags().BoolVarP(force, "force", "f", false, usage)
}

// DescribeColumns adds the --format column keys of what cmd prints to its
// long help, and gives them to --format's completion.
func DescribeColumns(cmd *cobra.Command, cols []output.ColumnInfo) {
	keys := make([]string, len(cols))
	for i, c := range cols {
		keys[i] = c.Key
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[columnsAnnotation] = strings.Join(keys, ",")
	var def, extra, doctl []string
	for _, c := range cols {
		switch {
		case c.Doctl:
			doctl = append(doctl, c.Key)
		case c.Extra:
			extra = append(extra, c.Key)
		default:
			def = append(def, c.Key)
		}
	}
	long := cmd.Long
	if long == "" {
		long = cmd.Short + "."
	}
	long += "\n\nColumns for --format: " + strings.Join(def, ", ")
	if len(extra) > 0 {
		long += "; also " + strings.Join(extra, ", ")
	}
	if len(doctl) > 0 {
		long += "; and doctl's, as doctl names them: " + strings.Join(doctl, ", ")
	}
	cmd.Long = long + "."
}

// GCMinAge is the default of repo gc --min-age: how old data that nothing
// references must be before a gc reclaims it. Messages that promise gc
// will reclaim something say it with this.
const GCMinAge = 10 * time.Minute

package display

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// PolicyColumns are the columns of policy get and policy list.
var PolicyColumns = []output.Column[provider.HostPolicy]{
	{Key: "Host", Header: "Host", Value: policyHost},
	{Key: "Enabled", Header: "Enabled", Value: func(p provider.HostPolicy) string { return strconv.FormatBool(p.BackupEnabled) }},
	{Key: "Plan", Header: "Plan", Value: func(p provider.HostPolicy) string { return planOf(p.BackupPolicy) }},
	{Key: "Weekday", Header: "Weekday", Value: policyWeekday},
	{Key: "Hour", Header: "Hour", Value: policyHour},
	{Key: "Retention", Header: "Retention", Value: policyRetention},
	{Key: "NextWindow", Header: "Next Window", Value: func(p provider.HostPolicy) string { return windowStart(p.NextBackupWindow) }},
	{Key: "HostID", Header: "Host ID", Extra: true, Value: func(p provider.HostPolicy) string { return strconv.Itoa(p.HostID) }},
	{Key: "WindowLength", Header: "Window Length", Extra: true, Value: policyWindowLength},
	{Key: "WindowEnd", Header: "Window End", Extra: true, Value: func(p provider.HostPolicy) string { return windowEnd(p.NextBackupWindow) }},
	// doctl's columns (doctl compute droplet backup-policies).
	{Key: "DropletID", Header: "Droplet ID", Doctl: true, Value: func(p provider.HostPolicy) string { return strconv.Itoa(p.HostID) }},
	{Key: "BackupEnabled", Header: "Enabled", Doctl: true, Value: func(p provider.HostPolicy) string { return strconv.FormatBool(p.BackupEnabled) }},
	{Key: "BackupPolicyPlan", Header: "Plan", Doctl: true, Value: func(p provider.HostPolicy) string {
		return policyField(p, func(q *provider.Policy) string { return q.Plan })
	}},
	{Key: "BackupPolicyWeekday", Header: "Weekday", Doctl: true, Value: func(p provider.HostPolicy) string {
		return policyField(p, func(q *provider.Policy) string { return q.Weekday })
	}},
	{Key: "BackupPolicyHour", Header: "Hour", Doctl: true, Value: func(p provider.HostPolicy) string {
		return policyField(p, func(q *provider.Policy) string { return strconv.Itoa(q.Hour) })
	}},
	{Key: "BackupPolicyWindowLengthHours", Header: "Window Length Hours", Doctl: true, Value: func(p provider.HostPolicy) string {
		return policyField(p, func(q *provider.Policy) string { return strconv.Itoa(q.WindowLengthHours) })
	}},
	{Key: "BackupPolicyRetentionPeriodDays", Header: "Retention Period Days", Doctl: true, Value: func(p provider.HostPolicy) string {
		return policyField(p, func(q *provider.Policy) string { return strconv.Itoa(q.RetentionPeriodDays) })
	}},
	{Key: "NextBackupWindowStart", Header: "Next Window Start", Doctl: true, Value: func(p provider.HostPolicy) string { return windowStart(p.NextBackupWindow) }},
	{Key: "NextBackupWindowEnd", Header: "Next Window End", Doctl: true, Value: func(p provider.HostPolicy) string { return windowEnd(p.NextBackupWindow) }},
}

// policyField is one field of a host's policy, or none when it has none.
func policyField(p provider.HostPolicy, field func(*provider.Policy) string) string {
	if p.BackupPolicy == nil {
		return output.None
	}
	return field(p.BackupPolicy)
}

// Policies displays a list of host policies.
func Policies(ps []provider.HostPolicy) output.Displayable { return output.List(PolicyColumns, ps) }

// Policy displays one host policy.
func Policy(p *provider.HostPolicy) output.Displayable { return output.One(PolicyColumns, *p) }

func policyHost(p provider.HostPolicy) string { return nameOrID(p.HostName, p.HostID) }

func policyWeekday(p provider.HostPolicy) string {
	if p.BackupPolicy == nil {
		return output.None
	}
	return output.OrNone(p.BackupPolicy.Weekday)
}

func policyHour(p provider.HostPolicy) string {
	if p.BackupPolicy == nil {
		return output.None
	}
	return strconv.Itoa(p.BackupPolicy.Hour)
}

func policyRetention(p provider.HostPolicy) string {
	if p.BackupPolicy == nil || p.BackupPolicy.RetentionPeriodDays == 0 {
		return output.None
	}
	return days(p.BackupPolicy.RetentionPeriodDays)
}

func policyWindowLength(p provider.HostPolicy) string {
	if p.BackupPolicy == nil || p.BackupPolicy.WindowLengthHours == 0 {
		return output.None
	}
	return fmt.Sprintf("%dh", p.BackupPolicy.WindowLengthHours)
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// SupportedColumns are the columns of policy supported.
var SupportedColumns = []output.Column[provider.SupportedPolicy]{
	{Key: "Plan", Header: "Plan", Value: func(s provider.SupportedPolicy) string { return s.Name }},
	{Key: "WindowStarts", Header: "Window Starts", Value: windowStarts},
	{Key: "WindowLength", Header: "Window Length", Value: func(s provider.SupportedPolicy) string { return fmt.Sprintf("%dh", s.WindowLengthHours) }},
	{Key: "Retention", Header: "Retention", Value: func(s provider.SupportedPolicy) string { return days(s.RetentionPeriodDays) }},
	{Key: "Days", Header: "Days", Value: func(s provider.SupportedPolicy) string { return output.OrNone(strings.Join(s.PossibleDays, ",")) }},
	// doctl's columns (doctl compute droplet backup-policies list-supported).
	{Key: "Name", Header: "Name", Doctl: true, Value: func(s provider.SupportedPolicy) string { return s.Name }},
	{Key: "PossibleWindowStarts", Header: "Possible Window Starts", Doctl: true, Value: func(s provider.SupportedPolicy) string { return fmt.Sprint(nonNil(s.PossibleWindowStarts)) }},
	{Key: "WindowLengthHours", Header: "Window Length Hours", Doctl: true, Value: func(s provider.SupportedPolicy) string { return strconv.Itoa(s.WindowLengthHours) }},
	{Key: "RetentionPeriodDays", Header: "Retention Period Days", Doctl: true, Value: func(s provider.SupportedPolicy) string { return strconv.Itoa(s.RetentionPeriodDays) }},
	{Key: "PossibleDays", Header: "Possible Days", Doctl: true, Value: func(s provider.SupportedPolicy) string { return fmt.Sprint(nonNil(s.PossibleDays)) }},
}

// Supported displays the plans a provider offers.
func Supported(ss []provider.SupportedPolicy) output.Displayable {
	return output.List(SupportedColumns, ss)
}

func windowStarts(s provider.SupportedPolicy) string {
	hours := make([]string, len(s.PossibleWindowStarts))
	for i, h := range s.PossibleWindowStarts {
		hours[i] = strconv.Itoa(h)
	}
	return output.OrNone(strings.Join(hours, ","))
}

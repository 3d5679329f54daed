package digitalocean

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
	"github.com/dropback/dropback/pkg/provider"
)

func TestEnableBackupsSendsThePolicy(t *testing.T) {
	cases := []struct {
		name string
		req  provider.PolicyRequest
		want string
	}{
		{"weekly", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("TUE"), Hour: ptr(16)},
			`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUE","hour":16}}`},
		{"weekday in lower case", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("tue"), Hour: ptr(16)},
			`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUE","hour":16}}`},
		{"daily", provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(4)},
			`{"type":"enable_backups","backup_policy":{"plan":"daily","weekday":"","hour":4}}`},
		{"daily at any hour", provider.PolicyRequest{Plan: ptr("daily")},
			`{"type":"enable_backups","backup_policy":{"plan":"daily","weekday":""}}`},
		{"usage-based plan the account lists", provider.PolicyRequest{Plan: ptr("intra_daily_12h"), Hour: ptr(0)},
			`{"type":"enable_backups","backup_policy":{"plan":"intra_daily_12h","hour":0}}`},
		{"usage-based plan with a retention", provider.PolicyRequest{Plan: ptr("intra_daily_4h"), RetentionDays: ptr(14)},
			`{"type":"enable_backups","backup_policy":{"plan":"intra_daily_4h","retention_period_days":14}}`},
		{"a basic plan's own retention is not sent", provider.PolicyRequest{Plan: ptr("weekly"), RetentionDays: ptr(28)},
			`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"SUN"}}`},
		{"weekly without a weekday gets SUN", provider.PolicyRequest{Plan: ptr("weekly"), Hour: ptr(4)},
			`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"SUN","hour":4}}`},
		{"default policy", provider.PolicyRequest{}, `{"type":"enable_backups"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed()
			a, err := e.p.EnableBackups(context.Background(), "db-1", c.req)
			require.NoError(t, err)
			assertBodies(t, e.actionBodies("/v2/droplets/456"), c.want)
			assert.Equal(t, "enable_backups", a.Type)
			assert.Equal(t, provider.StatusInProgress, a.Status)
			assert.Equal(t, 456, a.ResourceID)
		})
	}
}

func TestPolicyValuesAreCheckedBeforeTheDropletIsTouched(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	cases := []struct {
		name  string
		req   provider.PolicyRequest
		want  []string // in the message
		reads []string // requests made
	}{
		{"hour", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("TUE"), Hour: ptr(5)}, []string{"hour 5", "0, 4, 8, 12, 16, 20"}, supportedOnly},
		{"weekday", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("TUESDAY")}, []string{"TUESDAY", "SUN, MON, TUE, WED, THU, FRI, SAT"}, supportedOnly},
		{"retention of a basic plan", provider.PolicyRequest{Plan: ptr("weekly"), RetentionDays: ptr(30)},
			[]string{"retention 30", "plan weekly keeps backups 28 days", "takes 28", "intra_daily_12h, intra_daily_6h, intra_daily_4h"}, supportedOnly},
		{"empty plan", provider.PolicyRequest{Plan: ptr("")}, []string{"plan"}, nil},
		{"no retention", provider.PolicyRequest{Plan: ptr("intra_daily_4h"), RetentionDays: ptr(0)}, []string{"retention 0"}, nil},
	}
	for _, c := range cases {
		for verb, call := range map[string]func() (*provider.Action, error){
			"enable": func() (*provider.Action, error) { return e.p.EnableBackups(ctx, "123", c.req) },
			"set":    func() (*provider.Action, error) { return e.p.SetPolicy(ctx, "123", c.req) },
		} {
			e.fake.ResetRequests()
			_, err := call()
			require.Error(t, err, "%s %s", verb, c.name)
			assert.True(t, errors.Is(err, provider.ErrInvalid), "%s %s: %v", verb, c.name, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w, "%s %s", verb, c.name)
			}
			assert.Equal(t, c.reads, e.sent(), "%s %s", verb, c.name)
		}
	}
}

var supportedOnly = []string{"GET /v2/droplets/backups/supported_policies"}

func TestPlansAreCheckedAgainstSupportedPolicies(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	cases := []struct {
		name string
		req  provider.PolicyRequest
		want []string
	}{
		{"unknown plan", provider.PolicyRequest{Plan: ptr("monthly")}, []string{`"monthly"`, "weekly, daily, intra_daily_12h"}},
		{"weekday on a daily plan", provider.PolicyRequest{Plan: ptr("daily"), Weekday: ptr("TUE")}, []string{"daily", "weekday"}},
		{"hour without a plan", provider.PolicyRequest{Hour: ptr(4)}, []string{"--plan", "weekly, daily, intra_daily_12h"}},
	}
	for _, c := range cases {
		e.fake.ResetRequests()
		_, err := e.p.EnableBackups(ctx, "db-1", c.req)
		require.Error(t, err, c.name)
		assert.True(t, errors.Is(err, provider.ErrInvalid), "%s: %v", c.name, err)
		for _, w := range c.want {
			assert.Contains(t, err.Error(), w, c.name)
		}
		assert.Equal(t, []string{"GET /v2/droplets/backups/supported_policies"}, e.sent(), c.name)
	}

	e.fake.SetSupportedPolicies([]fakedo.SupportedPolicy{{Name: "weekly", PossibleWindowStarts: []int{0, 12},
		WindowLengthHours: 4, RetentionPeriodDays: 28, PossibleDays: []string{"SAT", "SUN"}}})
	_, err := e.p.EnableBackups(ctx, "db-1", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("TUE"), Hour: ptr(0)})
	assert.ErrorContains(t, err, "SAT, SUN")
	_, err = e.p.EnableBackups(ctx, "db-1", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("SAT"), Hour: ptr(4)})
	assert.ErrorContains(t, err, "0, 12")
	assert.Empty(t, e.actionBodies("/v2/droplets/456"))
}

func TestDisableBackups(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()

	_, err := e.p.DisableBackups(ctx, "123", provider.DisableOptions{KeepBackups: true})
	assert.True(t, errors.Is(err, provider.ErrUnsupported), "%v", err)
	assert.ErrorContains(t, err, "backups convert")
	assert.Empty(t, e.sent())

	_, err = e.p.DisableBackups(ctx, "123", provider.DisableOptions{})
	assert.True(t, errors.Is(err, provider.ErrConfirm), "%v", err)
	assert.ErrorContains(t, err, "3 backup")
	assert.Empty(t, e.actionBodies("/v2/droplets/123"))

	a, err := e.p.DisableBackups(ctx, "web-1", provider.DisableOptions{DeleteBackups: true})
	require.NoError(t, err)
	assert.Equal(t, "disable_backups", a.Type)
	assertBodies(t, e.actionBodies("/v2/droplets/123"), `{"type":"disable_backups"}`)
}

func TestSetPolicyKeepsWhatIsNotNamed(t *testing.T) {
	weekly := fakedo.Policy{Plan: "weekly", Weekday: "SUN", Hour: 8}
	usage := fakedo.Policy{Plan: "intra_daily_4h", Hour: 8, RetentionDays: 30}
	cases := []struct {
		name string
		cur  fakedo.Policy
		req  provider.PolicyRequest
		want string
	}{
		{"hour only", weekly, provider.PolicyRequest{Hour: ptr(20)},
			`{"type":"change_backup_policy","backup_policy":{"plan":"weekly","weekday":"SUN","hour":20}}`},
		{"weekday only", weekly, provider.PolicyRequest{Weekday: ptr("FRI")},
			`{"type":"change_backup_policy","backup_policy":{"plan":"weekly","weekday":"FRI","hour":8}}`},
		{"to daily drops the weekday", weekly, provider.PolicyRequest{Plan: ptr("daily")},
			`{"type":"change_backup_policy","backup_policy":{"plan":"daily","weekday":"","hour":8}}`},
		{"daily to weekly gets SUN", fakedo.Policy{Plan: "daily", Hour: 4}, provider.PolicyRequest{Plan: ptr("weekly")},
			`{"type":"change_backup_policy","backup_policy":{"plan":"weekly","weekday":"SUN","hour":4}}`},
		{"a chosen retention survives an hour change", usage, provider.PolicyRequest{Hour: ptr(8)},
			`{"type":"change_backup_policy","backup_policy":{"plan":"intra_daily_4h","hour":8,"retention_period_days":30}}`},
		{"a chosen retention follows to another usage-based plan", usage, provider.PolicyRequest{Plan: ptr("intra_daily_12h")},
			`{"type":"change_backup_policy","backup_policy":{"plan":"intra_daily_12h","hour":8,"retention_period_days":30}}`},
		{"a basic plan drops a chosen retention", usage, provider.PolicyRequest{Plan: ptr("daily")},
			`{"type":"change_backup_policy","backup_policy":{"plan":"daily","weekday":"","hour":8}}`},
		{"retention only", usage, provider.PolicyRequest{RetentionDays: ptr(14)},
			`{"type":"change_backup_policy","backup_policy":{"plan":"intra_daily_4h","hour":8,"retention_period_days":14}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.fake.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1", BackupsEnabled: true, Policy: c.cur})
			e.fake.ResetRequests()
			a, err := e.p.SetPolicy(context.Background(), "web-1", c.req)
			require.NoError(t, err)
			assert.Equal(t, "change_backup_policy", a.Type)
			assertBodies(t, e.actionBodies("/v2/droplets/123"), c.want)
			hp, err := e.p.GetPolicy(context.Background(), "123")
			require.NoError(t, err)
			if c.req.RetentionDays != nil {
				assert.Equal(t, *c.req.RetentionDays, hp.BackupPolicy.RetentionPeriodDays)
			}
		})
	}
}

func TestRetentionOfABasicPlanNamesTheAllowedValue(t *testing.T) {
	e := newEnv(t)
	e.seed()
	_, err := e.p.SetPolicy(context.Background(), "123", provider.PolicyRequest{RetentionDays: ptr(14)})
	require.True(t, errors.Is(err, provider.ErrInvalid), "%v", err)
	assert.ErrorContains(t, err, "plan weekly keeps backups 28 days")
	assert.ErrorContains(t, err, "intra_daily_4h")
	assert.Empty(t, e.actionBodies("/v2/droplets/123"))
}

func TestSetPolicyRefusals(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	_, err := e.p.SetPolicy(ctx, "db-1", provider.PolicyRequest{Hour: ptr(4)})
	assert.True(t, errors.Is(err, provider.ErrInvalid), "%v", err)
	assert.ErrorContains(t, err, "not enabled")
	_, err = e.p.SetPolicy(ctx, "web-1", provider.PolicyRequest{})
	assert.True(t, errors.Is(err, provider.ErrInvalid), "%v", err)
	assert.Empty(t, e.actionBodies("/v2/droplets/123"))
	assert.Empty(t, e.actionBodies("/v2/droplets/456"))
}

func TestGetAndListPolicies(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	hp, err := e.p.GetPolicy(ctx, "web-1")
	require.NoError(t, err)
	assert.Equal(t, 123, hp.HostID)
	assert.Equal(t, "web-1", hp.HostName)
	assert.True(t, hp.BackupEnabled)
	assert.Equal(t, &provider.Policy{Plan: "weekly", Weekday: "SUN", Hour: 8, WindowLengthHours: 4, RetentionPeriodDays: 28}, hp.BackupPolicy)
	require.NotNil(t, hp.NextBackupWindow)
	assert.Equal(t, 8, hp.NextBackupWindow.Start.Hour())
	assert.Contains(t, e.sent(), "GET /v2/droplets/123/backups/policy")

	all, err := e.p.ListPolicies(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, *hp, all[0])
	assert.Equal(t, provider.HostPolicy{HostID: 456, HostName: "db-1"}, all[1])
}

func TestSupportedPolicies(t *testing.T) {
	e := newEnv(t)
	sps, err := e.p.SupportedPolicies(context.Background())
	require.NoError(t, err)
	require.Len(t, sps, 5)
	assert.Equal(t, provider.SupportedPolicy{Name: "daily", PossibleWindowStarts: []int{0, 4, 8, 12, 16, 20},
		WindowLengthHours: 4, RetentionPeriodDays: 7, PossibleDays: []string{}}, sps[1])
	assert.Equal(t, "intra_daily_12h", sps[2].Name)
	assert.Equal(t, []string{"GET /v2/droplets/backups/supported_policies"}, e.sent())
}

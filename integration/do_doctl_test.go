package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

// usageBased gives the fake usage-1 (789), on the usage-based plan
// intra_daily_4h with a chosen retention of 30 days, and no backups.
func usageBased(f *fakedo.Server) {
	f.AddDroplet(fakedo.Droplet{ID: 789, Name: "usage-1", BackupsEnabled: true,
		Policy: fakedo.Policy{Plan: "intra_daily_4h", Hour: 4, RetentionDays: 30}})
}

// gone gives the fake images of Droplet 999, which no longer exists: a
// backup 3001 and a snapshot 3002.
func gone(f *fakedo.Server) {
	f.AddImage(fakedo.Image{ID: 3001, DropletID: 999, Type: "backup"})
	f.AddImage(fakedo.Image{ID: 3002, DropletID: 999, Type: "snapshot", Name: "old-db-final"})
}

// tagged tags web-1 and db-1 "prod": web-1 has backups, db-1 none.
func tagged(f *fakedo.Server) {
	f.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1", BackupsEnabled: true, Tags: []string{"prod"},
		Policy: fakedo.Policy{Plan: "weekly", Weekday: "SUN", Hour: 8}})
	f.AddDroplet(fakedo.Droplet{ID: 456, Name: "db-1", Region: "fra1", Tags: []string{"prod"}})
}

// The findings of a doctl user's first day, each failing on the code
// before they were fixed, and the rest of DigitalOcean's backups product.
var doctlCases = []doCase{
	// policy set --retention-days failed in every DigitalOcean context.
	{name: "policy-set-retention-usage-based", args: []string{"policy", "set", "usage-1", "--retention-days", "14"},
		setup: usageBased,
		check: assertBody(`{"type":"change_backup_policy","backup_policy":{"plan":"intra_daily_4h","hour":4,"retention_period_days":14}}`)},
	// policy set --hour dropped a chosen retention.
	{name: "policy-set-keeps-retention", args: []string{"policy", "set", "usage-1", "--hour", "8"}, setup: usageBased,
		check: assertBody(`{"type":"change_backup_policy","backup_policy":{"plan":"intra_daily_4h","hour":8,"retention_period_days":30}}`)},
	// daily to weekly sent an empty weekday.
	{name: "policy-set-daily-to-weekly", args: []string{"policy", "set", "usage-1", "--plan", "weekly"},
		setup: func(f *fakedo.Server) {
			f.AddDroplet(fakedo.Droplet{ID: 789, Name: "usage-1", BackupsEnabled: true, Policy: fakedo.Policy{Plan: "daily", Hour: 4}})
		},
		check: assertBody(`{"type":"change_backup_policy","backup_policy":{"plan":"weekly","weekday":"SUN","hour":4}}`)},
	// backups disable suggested --keep-backups, which DigitalOcean refuses.
	{name: "backups-disable-unconfirmed", args: []string{"backups", "disable", "web-1"}, code: 6,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			onlyGets(t, f, r)
			assert.NotContains(t, r.stderr, "--keep-backups")
			assert.Contains(t, r.stderr, "deletes its 3 backups")
			assert.Contains(t, r.stderr, "--force")
		}},
	// ... and asked for --force with no backups to delete.
	{name: "backups-disable-no-backups", args: []string{"backups", "disable", "usage-1"}, setup: usageBased,
		check: assertBody(`{"type":"disable_backups"}`)},
	// backups get of an image whose Droplet is gone showed Host 0.
	{name: "backups-get-droplet-gone", args: []string{"backups", "get", "3001"}, setup: gone,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.NotRegexp(t, `\s0\s`, r.stdout)
		}},
	{name: "snapshots-get-droplet-gone", args: []string{"backups", "get", "3002", "--format", "ID,Host,ResourceId"}, setup: gone,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			if !strings.Contains(strings.Join(r.args, " "), "json") {
				assert.Contains(t, r.stdout, "3002    999     999")
			}
		}},
	// restore --to-new --wait exited 2 when the API gave no action link.
	{name: "backups-restore-new-wait-no-link", args: []string{"backups", "restore", "web-1", "1233", "--to-new", "web-1-copy",
		"--size", "s-1vcpu-1gb", "--region", "nyc3", "--wait"},
		setup: func(f *fakedo.Server) { f.OmitActionLinks(); f.SetActionPolls(0) },
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stdout, "completed")
			assert.Len(t, f.Bodies(http.MethodPost, "/v2/droplets"), 1, "one Droplet created")
		}},

	{name: "snapshots-create", args: []string{"snapshots", "create", "web-1", "--snapshot-name", "before-upgrade", "--wait"},
		setup: func(f *fakedo.Server) { f.SetActionPolls(0) },
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assertBody(`{"type":"snapshot","name":"before-upgrade"}`)(t, f, r)
			assert.Contains(t, r.stdout, "completed")
		}},
	{name: "snapshots-list-all", args: []string{"snapshots", "list"}, setup: gone,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stdout, "3002")
			assert.Contains(t, r.stdout, "2001")
			assert.Len(t, f.Bodies(http.MethodGet, "/v2/snapshots"), 1)
		}},
	{name: "snapshots-list-droplet-gone", args: []string{"snapshots", "list", "999"}, setup: gone,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stdout, "3002")
			assert.NotContains(t, r.stdout, "2001")
		}},
	{name: "backups-restore-snapshot-droplet-gone", args: []string{"backups", "restore", "999", "3002", "--to-new", "db-1-again",
		"--size", "s-1vcpu-1gb", "--region", "nyc3"}, setup: gone,
		check: assertBody(`{"name":"db-1-again","region":"nyc3","size":"s-1vcpu-1gb","image":3002,"ssh_keys":[],
			"backups":false,"ipv6":false,"private_networking":false,"monitoring":false,"tags":[]}`)},
	{name: "snapshots-delete-several", args: []string{"snapshots", "delete", "2001", "3002", "--force"}, setup: gone,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			_, a := f.Image(2001)
			_, b := f.Image(3002)
			assert.False(t, a || b, "both deleted")
		}},
	{name: "actions-list-host", args: []string{"actions", "list", "web-1"}},
	{name: "backups-enable-tag", args: []string{"backups", "enable", "--tag", "prod"}, setup: tagged,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assertBody(`{"type":"enable_backups"}`)(t, f, r)
			assert.Len(t, f.Bodies(http.MethodPost, "/v2/droplets/actions"), 1, "one request for the tag")
		}},
	{name: "backups-disable-tag-unconfirmed", args: []string{"backups", "disable", "--tag", "prod"}, code: 6, setup: tagged,
		check: mentions("have 3 backup(s)", "--force")},
	{name: "backups-disable-tag", args: []string{"backups", "disable", "--tag", "prod", "--force"}, setup: tagged,
		check: assertBody(`{"type":"disable_backups"}`)},
}

func TestDigitalOceanDoctlHabits(t *testing.T) { runDOCases(t, doctlCases) }

// backups enable --help named the --plan value "policy supported" (from
// backquotes in its usage) and listed the engine's plans in every context.
func TestDoctlHelpOfThePlanFlag(t *testing.T) {
	fake := fakedo.New(t)
	for _, ctx := range []string{"local", "digitalocean"} {
		cmd := dropbackCmd(t.TempDir(), nil, "--context", ctx, "-u", fake.URL, "backups", "enable", "--help")
		out, err := cmd.Output()
		require.NoError(t, err)
		var plan string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "--plan") {
				plan = line
			}
		}
		assert.Regexp(t, `--plan plan\s+backup plan`, plan, ctx)
		for _, bad := range []string{"policy supported  ", "every-", "intra_daily", "`"} {
			assert.NotContains(t, plan, bad, ctx)
		}
	}
	assert.Empty(t, fake.Requests(), "help sends nothing")
}

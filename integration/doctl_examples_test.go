package integration

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

// doctlTable is how doctl prints a resource: its default columns and the
// header of every column, as doctl's displayers have them
// (commands/displayers in github.com/digitalocean/doctl).
type doctlTable struct {
	cols    []string
	headers map[string]string
}

var (
	doctlAction = doctlTable{
		cols: []string{"ID", "Status", "Type", "StartedAt", "CompletedAt", "ResourceID", "ResourceType", "Region"},
		headers: map[string]string{"ID": "ID", "Status": "Status", "Type": "Type", "StartedAt": "Started At",
			"CompletedAt": "Completed At", "ResourceID": "Resource ID", "ResourceType": "Resource Type", "Region": "Region"},
	}
	doctlImage = doctlTable{
		cols: []string{"ID", "Name", "Type", "Distribution", "Slug", "Public", "MinDisk", "Created"},
		headers: map[string]string{"ID": "ID", "Name": "Name", "Type": "Type", "Distribution": "Distribution",
			"Slug": "Slug", "Public": "Public", "MinDisk": "Min Disk", "Created": "Created"},
	}
	doctlSnapshot = doctlTable{
		cols: []string{"ID", "Name", "CreatedAt", "Regions", "ResourceId", "ResourceType", "MinDiskSize", "Size", "Tags"},
		headers: map[string]string{"ID": "ID", "Name": "Name", "CreatedAt": "Created at", "Regions": "Regions",
			"ResourceId": "Resource ID", "ResourceType": "Resource Type", "MinDiskSize": "Min Disk Size", "Size": "Size", "Tags": "Tags"},
	}
	doctlPolicy = doctlTable{
		cols: []string{"DropletID", "BackupEnabled", "BackupPolicyPlan", "BackupPolicyWeekday", "BackupPolicyHour",
			"BackupPolicyWindowLengthHours", "BackupPolicyRetentionPeriodDays", "NextBackupWindowStart", "NextBackupWindowEnd"},
		headers: map[string]string{"DropletID": "Droplet ID", "BackupEnabled": "Enabled", "BackupPolicyPlan": "Plan",
			"BackupPolicyWeekday": "Weekday", "BackupPolicyHour": "Hour", "BackupPolicyWindowLengthHours": "Window Length Hours",
			"BackupPolicyRetentionPeriodDays": "Retention Period Days", "NextBackupWindowStart": "Next Window Start",
			"NextBackupWindowEnd": "Next Window End"},
	}
	doctlSupported = doctlTable{
		cols: []string{"Name", "PossibleWindowStarts", "WindowLengthHours", "RetentionPeriodDays", "PossibleDays"},
		headers: map[string]string{"Name": "Name", "PossibleWindowStarts": "Possible Window Starts",
			"WindowLengthHours": "Window Length Hours", "RetentionPeriodDays": "Retention Period Days", "PossibleDays": "Possible Days"},
	}
)

// doctlTableOf is the table a doctl command prints, by its words; a row
// with no doctl command prints an action.
func doctlTableOf(cmd string) doctlTable {
	for _, t := range []struct {
		prefix string
		table  doctlTable
	}{
		{"doctl compute droplet backups", doctlImage},
		{"doctl compute droplet snapshots", doctlImage},
		{"doctl compute image get", doctlImage},
		{"doctl compute droplet backup-policies list-supported", doctlSupported},
		{"doctl compute droplet backup-policies", doctlPolicy},
		{"doctl compute snapshot", doctlSnapshot},
	} {
		if strings.HasPrefix(cmd, t.prefix) {
			return t.table
		}
	}
	return doctlAction
}

// doctlRow is a row of the table of docs/doctl.md.
type doctlRow struct {
	doctl, dropback, columns string
}

func readDoctlTable(t *testing.T) []doctlRow {
	t.Helper()
	doc, err := os.ReadFile("../docs/doctl.md")
	require.NoError(t, err)
	cell := regexp.MustCompile("^`([^`]*)`$")
	unquote := func(s string) string {
		s = strings.TrimSpace(s)
		if m := cell.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return s
	}
	var rows []doctlRow
	in := false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(line, "| doctl | dropback |"):
			in = true
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "| "):
			parts := strings.Split(strings.Trim(line, "| "), " | ")
			require.Len(t, parts, 3, "row %q", line)
			rows = append(rows, doctlRow{unquote(parts[0]), unquote(parts[1]), unquote(parts[2])})
		case in:
			in = false
		}
	}
	require.GreaterOrEqual(t, len(rows), 20, "the table of docs/doctl.md")
	return rows
}

// seedExamples gives the fake the objects of doctl's examples: Droplet
// 386734086 (tagged example-tag, backups on unless enable is the verb), its
// backup 146288445 and snapshot 386734086, and actions 386734086, 191669331
// and 123456.
func seedExamples(f *fakedo.Server, backupsOn bool) {
	f.AddDroplet(fakedo.Droplet{ID: 386734086, Name: "example-droplet", BackupsEnabled: backupsOn, Tags: []string{"example-tag"},
		Policy: fakedo.Policy{Plan: "weekly", Weekday: "SUN", Hour: 4}})
	f.AddImage(fakedo.Image{ID: 146288445, DropletID: 386734086, Type: "backup"})
	f.AddImage(fakedo.Image{ID: 386734086, DropletID: 386734086, Type: "snapshot", Name: "example-snapshot"})
	done := fakedo.Epoch.Add(3600)
	for _, a := range []fakedo.Action{
		{ID: 386734086, Type: "reboot", ResourceID: 386734086, ResourceType: "droplet"},
		{ID: 191669331, Type: "transfer", ResourceID: 386734086, ResourceType: "image"},
		{ID: 123456, Type: "snapshot", ResourceID: 386734086, ResourceType: "droplet"},
	} {
		a.Status, a.CompletedAt = "completed", &done
		f.AddAction(a)
	}
	f.SetActionPolls(0)
	f.ResetRequests()
}

// headerOf splits a table's header line into its headers.
func headerOf(out string) []string {
	line, _, _ := strings.Cut(out, "\n")
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// TestDoctlExamples runs the dropback command of every row of the table of
// docs/doctl.md against the fake API and checks that it is accepted and,
// with the row's --format, prints the columns doctl prints.
func TestDoctlExamples(t *testing.T) {
	authHome, authFake := t.TempDir(), fakedo.New(t)
	for _, row := range readDoctlTable(t) {
		t.Run(row.dropback, func(t *testing.T) {
			args := strings.Fields(strings.TrimPrefix(row.dropback, "dropback "))
			if strings.HasPrefix(row.columns, "--format ") {
				args = append(args, strings.Fields(row.columns)...)
			}
			var r result
			if args[0] == "auth" {
				// The auth rows run in turn in one home.
				r = runHome(t, authHome, []string{"DIGITALOCEAN_API_URL=" + authFake.URL}, fakedo.DefaultToken+"\n", args...)
			} else {
				fake := fakedo.New(t)
				seedExamples(fake, !strings.HasPrefix(row.dropback, "dropback backups enable 386734086"))
				r = runDO(t, fake, args...)
			}
			require.Equal(t, 0, r.code, "%s\nstdout:\n%s\nstderr:\n%s", row.dropback, r.stdout, r.stderr)
			switch {
			case row.columns == "(prints no table)":
				assert.Empty(t, r.stdout)
			case strings.HasPrefix(row.columns, "--format ") || row.columns == "—":
				table := doctlTableOf(row.doctl)
				keys := table.cols
				if i := strings.Index(row.doctl, "--format "); i >= 0 {
					keys = strings.Split(strings.Fields(row.doctl[i:])[1], ",")
				}
				var want []string
				for _, k := range keys {
					require.Contains(t, table.headers, k, "doctl's %s", row.doctl)
					want = append(want, table.headers[k])
				}
				assert.Equal(t, want, headerOf(r.stdout), "the columns doctl prints for %s", row.doctl)
			}
		})
	}
}

// TestDoctlTableHasEveryBackupCommand checks that the table of
// docs/doctl.md names every doctl command for Droplet backups, backup
// policies, snapshots and their actions (from doctl's command tree).
func TestDoctlTableHasEveryBackupCommand(t *testing.T) {
	var named []string
	for _, row := range readDoctlTable(t) {
		named = append(named, row.doctl)
	}
	all := strings.Join(named, "\n")
	for _, cmd := range []string{
		"doctl compute droplet backups", "doctl compute droplet snapshots", "doctl compute droplet actions",
		"doctl compute droplet backup-policies get", "doctl compute droplet backup-policies list\n",
		"doctl compute droplet backup-policies list-supported",
		"doctl compute droplet-action enable-backups", "doctl compute droplet-action disable-backups",
		"doctl compute droplet-action change-backup-policy", "doctl compute droplet-action restore",
		"doctl compute droplet-action snapshot", "doctl compute droplet-action get",
		"doctl compute image get", "doctl compute image-action get",
		"doctl compute snapshot list", "doctl compute snapshot get", "doctl compute snapshot delete",
		"doctl compute action get", "doctl compute action list", "doctl compute action wait",
		"doctl auth init", "doctl auth switch", "doctl auth remove", "doctl auth list", "doctl auth token",
	} {
		assert.True(t, strings.Contains(all+"\n", cmd), "docs/doctl.md has no row for %s", strings.TrimSpace(cmd))
	}
}

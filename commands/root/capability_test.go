package root

import (
	"strings"
	"testing"
)

// A verb whose capability the context lacks fails before it sends or
// changes anything, and says which kind of context can and what to do
// instead.
func TestVerbsAContextCannotDoNameTheAlternative(t *testing.T) {
	engineOnly := []struct {
		args []string
		alt  string
	}{
		{[]string{"hosts", "add", "web-2", "--disk", "/dev/vdb"}, "doctl compute droplet create"},
		{[]string{"hosts", "remove", "web-1", "--force"}, "backups disable"},
		{[]string{"backups", "create", "web-1"}, "doctl compute droplet-action snapshot <droplet-id> --snapshot-name NAME"},
		{[]string{"backups", "verify"}, "--to-new"},
		{[]string{"backups", "prune", "--keep-daily", "7", "--force"}, "policy set"},
		{[]string{"backups", "disable", "web-1", "--keep-backups"}, "backups convert"},
		{[]string{"repo", "init"}, "--context local"},
		{[]string{"repo", "stats"}, "--context local"},
		{[]string{"repo", "gc"}, "snapshots delete"},
		{[]string{"run", "--due"}, "policy set"},
		{[]string{"agent"}, "policy set"},
		{[]string{"backups", "serve", "web-1", "latest"}, "cannot be downloaded or read in place; restore to a new Droplet instead: `dropback --context digitalocean backups restore <droplet> <id> --to-new NAME"},
		{[]string{"backups", "export", "web-1", "latest", "--to", "web-1.img"}, "cannot be downloaded or read in place; restore to a new Droplet instead"},
		{[]string{"backups", "mount", "web-1", "latest", "/mnt"}, "cannot be downloaded or read in place; restore to a new Droplet instead"},
	}
	for _, tc := range engineOnly {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := newCLI(t)
			c.cloud = "work"
			r := c.run(t, tc.args...)
			wantCode(t, r, 1)
			wantOneLineError(t, r, "is not supported in the work context (engine only)", tc.alt)
			for _, call := range c.fake.Calls {
				if !strings.HasPrefix(call, "List") && !strings.HasPrefix(call, "Get") {
					t.Errorf("a verb the context cannot do called %s", call)
				}
			}
		})
	}
}

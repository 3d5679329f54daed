package backups

import (
	"testing"
	"time"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
)

func TestNewCmdRestoreParsesFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, o *RestoreOptions)
	}{
		{name: "in place", args: []string{"web-1", "latest"}, check: func(t *testing.T, o *RestoreOptions) {
			if o.Ref.Host != "web-1" || o.Ref.Backup != "latest" || o.Force || o.To != "" || o.Wait.Wait || o.Wait.Timeout != 10*time.Minute {
				t.Fatalf("options = %+v", o)
			}
		}},
		{name: "to path, forced, waiting", args: []string{"3", "42", "--to", "/x", "-f", "--wait", "--wait-timeout", "2m"},
			check: func(t *testing.T, o *RestoreOptions) {
				if o.Ref.Host != "3" || o.Ref.Backup != "42" || o.To != "/x" || !o.Force || !o.Wait.Wait || o.Wait.Timeout != 2*time.Minute {
					t.Fatalf("options = %+v", o)
				}
			}},
		{name: "to new droplet", args: []string{"web-1", "42", "--to-new", "n", "--size", "s", "--region", "r",
			"--ssh-keys", "1,2", "--vpc-uuid", "v", "--tag", "a", "--tag", "b"},
			check: func(t *testing.T, o *RestoreOptions) {
				if o.ToNew != "n" || o.Size != "s" || o.Region != "r" || len(o.SSHKeys) != 2 || o.VPCUUID != "v" || len(o.Tags) != 2 {
					t.Fatalf("options = %+v", o)
				}
			}},
		{name: "bare backup ID", args: []string{"42", "--to", "/x"}, check: func(t *testing.T, o *RestoreOptions) {
			if o.Ref.Host != "" || o.Ref.Backup != "42" || o.To != "/x" {
				t.Fatalf("options = %+v", o)
			}
		}},
		{name: "latest without a host", args: []string{"latest"}, wantErr: true},
		{name: "bad backup", args: []string{"web-1", "yesterday"}, wantErr: true},
		{name: "one argument", args: []string{"web-1"}, wantErr: true},
		{name: "empty to", args: []string{"web-1", "1", "--to", "", "--force"}, wantErr: true},
		{name: "empty to=", args: []string{"web-1", "1", "--to=", "--force"}, wantErr: true},
		{name: "empty to-new", args: []string{"web-1", "1", "--to-new", "", "--force"}, wantErr: true},
		{name: "to and to-new", args: []string{"web-1", "1", "--to", "/x", "--to-new", "n"}, wantErr: true},
		{name: "size without to-new", args: []string{"web-1", "1", "--size", "s"}, wantErr: true},
	}
	for _, tt := range tests {
		for _, tty := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				ios, _, _, _ := output.Test()
				ios.SetTTY(tty)
				f := cmdutil.New("test", ios, func(string) string { return "" }, nil)
				var got *RestoreOptions
				cmd := NewCmdRestore(f, func(o *RestoreOptions) error { got = o; return nil })
				cmd.SetArgs(tt.args)
				cmd.SilenceErrors, cmd.SilenceUsage = true, true
				err := cmd.Execute()
				if tt.wantErr {
					if cmdutil.ExitCode(err) != cmdutil.ExitUsage {
						t.Fatalf("err = %v, want a usage error", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, got)
			})
		}
	}
}

package root

import (
	"github.com/dropback/dropback/pkg/provider"
	"strings"
	"testing"
)

func TestProgressOnlyOnATerminal(t *testing.T) {
	verbs := [][]string{
		{"backups", "create", "web-1"},
		{"backups", "restore", "web-1", "latest", "--to", "/tmp/x"},
		{"backups", "verify"},
	}
	for _, verb := range verbs {
		t.Run(verb[1], func(t *testing.T) {
			c := newCLI(t)
			c.tty = true
			r := c.run(t, verb...)
			wantCode(t, r, 0)
			if !strings.Contains(r.err, "ETA") || !strings.Contains(r.err, "/s") || !strings.Contains(r.err, "100%") {
				t.Fatalf("no progress bar on a terminal: %q", r.err)
			}
			for _, extra := range [][]string{nil, {"-o", "json"}, {"-q"}} {
				c := newCLI(t)
				c.tty = extra != nil
				r := c.run(t, append(verb, extra...)...)
				if strings.Contains(r.err, "ETA") {
					t.Fatalf("progress bar drawn (tty=%v, %v): %q", c.tty, extra, r.err)
				}
			}
		})
	}
}

func TestVerifyDamagedExits1(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "backups", "verify")
	wantCode(t, r, 0)

	c = newCLI(t)
	c.fake.Verify = damagedReport()
	r = c.run(t, "backups", "verify", "101", "102")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "1 of 2 backups damaged")
	if !strings.Contains(r.out, "damaged") || !strings.Contains(r.out, "chunk 7f3a") {
		t.Fatalf("verdict table missing: %q", r.out)
	}
	if got := c.calls("VerifyBackups"); len(got) != 1 || got[0] != "VerifyBackups [101 102]" {
		t.Fatalf("calls = %v", got)
	}
}

func damagedReport() *provider.VerifyReport {
	return &provider.VerifyReport{
		Backups: []provider.VerifiedBackup{
			{ID: 101, HostName: "web-1", Status: "ok"},
			{ID: 102, HostName: "web-1", Status: "damaged", Problem: "chunk 7f3a fails its hash"},
		},
		Chunks: 200, Bytes: 200 << 20, Problems: []string{"pack 12: bad checksum"},
	}
}

package root

import (
	"testing"
)

func TestPolicySetSendsOnlyTheFlagsGiven(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "policy", "set", "web-1", "--hour", "8")
	wantCode(t, r, 0)
	req := c.fake.LastPolicy
	if req.Hour == nil || *req.Hour != 8 || req.Plan != nil || req.Weekday != nil || req.RetentionDays != nil {
		t.Fatalf("request = %+v", req)
	}
}

func TestPolicySetHourZeroIsSent(t *testing.T) {
	c := newCLI(t)
	wantCode(t, c.run(t, "policy", "set", "web-1", "--hour", "0"), 0)
	if h := c.fake.LastPolicy.Hour; h == nil || *h != 0 {
		t.Fatalf("hour = %v", h)
	}
}

func TestPolicySetWithoutFlagsIsAUsageError(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "policy", "set", "web-1")
	wantCode(t, r, 2)
	wantOneLineError(t, r, "nothing to change")
	if len(c.calls("SetPolicy")) != 0 {
		t.Fatal("policy changed")
	}
}

func TestEnableSendsTheFlagsGiven(t *testing.T) {
	c := newCLI(t)
	wantCode(t, c.run(t, "backups", "enable", "db-1", "--plan", "weekly", "--weekday", "TUE", "--hour", "16"), 0)
	req := c.fake.LastPolicy
	if *req.Plan != "weekly" || *req.Weekday != "TUE" || *req.Hour != 16 || req.RetentionDays != nil {
		t.Fatalf("request = %+v", req)
	}
	c = newCLI(t)
	wantCode(t, c.run(t, "backups", "enable", "db-1"), 0)
	req = c.fake.LastPolicy
	if req.Plan != nil || req.Weekday != nil || req.Hour != nil || req.RetentionDays != nil {
		t.Fatalf("defaults must be left to the provider: %+v", req)
	}
}

package engine

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// An action whose process ended without finishing it reads as errored, not
// as in progress forever; one whose process runs stays in progress.
func TestAbandonedActionIsErrored(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	live, err := r.StartAction(ctx, "backup", "host", 1)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	dead := hostMachine{}.Self()
	dead.PID = cmd.Process.Pid
	data, _ := json.Marshal(ActionRecord{ID: 99, N: 1, Type: "backup", Status: ActionInProgress,
		StartedAt: time.Now().UTC(), ResourceType: "host", ResourceID: 1, Runner: &dead})
	if err := r.st.Put(ctx, actionObject(99, 1), data); err != nil {
		t.Fatal(err)
	}

	status := func(id int) *ActionRecord {
		t.Helper()
		a, err := r.Action(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := status(live.ID); a.Status != ActionInProgress {
		t.Errorf("the action of the running process is %s, want %s", a.Status, ActionInProgress)
	}
	if a := status(99); a.Status != ActionErrored || !strings.Contains(a.Error, "abandoned") {
		t.Errorf("the action of a process that ended is %s (%q), want %s, abandoned", a.Status, a.Error, ActionErrored)
	}
	all, err := r.Actions(ctx)
	if err != nil || len(all) != 2 || all[0].ID != 99 || all[0].Status != ActionErrored {
		t.Errorf("Actions() = %+v, %v; want the abandoned action errored first", all, err)
	}

	if err := r.FinishAction(ctx, live, 0, nil); err != nil {
		t.Fatal(err)
	}
	if a := status(live.ID); a.Status != ActionCompleted || a.Runner != nil {
		t.Errorf("a finished action is %s with runner %+v, want %s and none", a.Status, a.Runner, ActionCompleted)
	}
}

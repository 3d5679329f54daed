package engine

import (
	"os"
	"os/exec"
	"testing"
)

func TestProcessEnded(t *testing.T) {
	me := thisProcess()
	if me.ended() {
		t.Fatalf("the running test process counts as ended: %+v", me)
	}

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	gone := processID{Hostname: me.Hostname, PID: cmd.Process.Pid, Start: me.Start}
	if !gone.ended() {
		t.Errorf("a process that exited counts as running: %+v", gone)
	}

	reused := me
	reused.Start = me.Start + "0" // this PID, but another process's start
	if me.Start != "" && !reused.ended() {
		t.Errorf("a PID taken by another process counts as the same process")
	}

	elsewhere := processID{Hostname: me.Hostname + ".elsewhere", PID: cmd.Process.Pid}
	if elsewhere.ended() {
		t.Errorf("a process of another machine counts as ended")
	}
	if _, err := os.ReadFile("/proc/self/stat"); err == nil && me.Start == "" {
		t.Errorf("no start time for this process although /proc tells it")
	}
}

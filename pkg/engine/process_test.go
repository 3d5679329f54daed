package engine

import (
	"os"
	"os/exec"
	"testing"
)

func TestProcessEnded(t *testing.T) {
	m := hostMachine{}
	me := m.Self()
	if ended(m, me) {
		t.Fatalf("the running test process counts as ended: %+v", me)
	}
	if _, err := os.ReadFile("/proc/self/stat"); err == nil && (me.Start == "" || me.BootID == "" || me.PIDNS == "") {
		t.Fatalf("this process is not fully named although /proc tells it: %+v", me)
	}

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	gone := me
	gone.PID = cmd.Process.Pid
	if !ended(m, gone) {
		t.Errorf("a process that exited counts as running: %+v", gone)
	}

	reused := me
	reused.Start = me.Start + "0" // this PID, but another process's start
	if !ended(m, reused) {
		t.Errorf("a PID taken by another process counts as the same process")
	}

	// Machines that share a hostname but not a boot (a cloned VM) or a PID
	// namespace (a container on the host network) cannot look up each
	// other's PIDs: their processes never count as ended.
	for name, other := range map[string]func(p *processID){
		"another hostname":      func(p *processID) { p.Hostname += ".elsewhere" },
		"a clone, another boot": func(p *processID) { p.BootID = "0f0f0f0f-clone"; p.Start = "" },
		"a container":           func(p *processID) { p.PIDNS = "pid:[1]" },
		"an unknown boot":       func(p *processID) { p.BootID, p.Start = "", "" },
		"an unknown namespace":  func(p *processID) { p.PIDNS = "" },
	} {
		p := gone
		other(&p)
		if ended(m, p) {
			t.Errorf("%s: a process that may run elsewhere counts as ended: %+v", name, p)
		}
	}

	// A record from before boot IDs were stored gives its boot in Start.
	old := gone
	old.BootID = ""
	if old.Start == "" || !ended(m, old) {
		t.Errorf("a record whose boot ID is only in Start is not judged: %+v", old)
	}
}

package engine

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processID names a running dropback process well enough to tell later,
// from the same machine, whether it has ended: a PID alone may have been
// reused by another process, or by one after a reboot, and means nothing in
// another PID namespace.
type processID struct {
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	// Start is the boot ID and the process's start time in clock ticks
	// since boot, where the system tells them (Linux); empty elsewhere.
	Start string `json:"start,omitempty"`
	// BootID and PIDNS name the boot and the PID namespace the PID belongs
	// to; empty where the system does not tell.
	BootID string `json:"boot_id,omitempty"`
	PIDNS  string `json:"pid_ns,omitempty"`
}

// sameMachine reports whether p's PID can be looked up here: same hostname,
// same boot and same PID namespace, each known. A clone of this machine or a
// container that shares its hostname differs in boot ID or PID namespace.
func (p processID) sameMachine(self processID) bool {
	return p.Hostname == self.Hostname && p.PID > 0 &&
		p.bootID() != "" && p.bootID() == self.bootID() &&
		p.PIDNS != "" && p.PIDNS == self.PIDNS
}

// bootID is BootID, or for a record written before it was stored, the boot
// ID that Start begins with.
func (p processID) bootID() string {
	if p.BootID != "" {
		return p.BootID
	}
	boot, _, _ := strings.Cut(p.Start, ":")
	return boot
}

// Machine tells the engine which process it runs as and whether another
// process of the same machine has ended. The real one asks the kernel;
// tests give each simulated process its own.
type Machine interface {
	// Self names the running process.
	Self() processID
	// Ended reports whether p, a process of this machine (sameMachine),
	// is known to have ended.
	Ended(p processID) bool
}

// hostMachine is the Machine the engine really runs on.
type hostMachine struct{}

func (hostMachine) Self() processID {
	host, _ := os.Hostname()
	pid := os.Getpid()
	boot := bootID()
	return processID{Hostname: host, PID: pid, Start: processStart(boot, pid), BootID: boot, PIDNS: pidNamespace()}
}

func (hostMachine) Ended(p processID) bool {
	if err := syscall.Kill(p.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return true
	}
	if p.Start == "" {
		return false // alive, as far as the PID tells
	}
	return processStart(p.BootID, p.PID) != p.Start
}

// ended reports whether the process p is known to have ended, as seen by
// machine m: only a process of this very machine ever is.
func ended(m Machine, p processID) bool {
	return p.sameMachine(m.Self()) && m.Ended(p)
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// processStart returns the boot ID and the start time of process pid, or ""
// where /proc does not tell.
func processStart(boot string, pid int) string {
	if boot == "" {
		return ""
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name, in parentheses, may hold spaces; the fields after
	// it are plain. starttime is field 22, the 20th after the name.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 20 {
		return ""
	}
	return boot + ":" + f[19]
}

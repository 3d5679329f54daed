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
// reused by another process, or by one after a reboot.
type processID struct {
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	// Start is the boot ID and the process's start time in clock ticks
	// since boot, where the system tells them (Linux); empty elsewhere.
	Start string `json:"start,omitempty"`
}

// thisProcess names the running process.
func thisProcess() processID {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return processID{Hostname: host, PID: pid, Start: processStart(pid)}
}

// ended reports whether the process is known to have ended: it ran on this
// machine and no process with its PID and start is alive. A process of
// another machine is never known to have ended.
func (p processID) ended() bool {
	if host, _ := os.Hostname(); p.Hostname != host || p.PID <= 0 {
		return false
	}
	if err := syscall.Kill(p.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return true
	}
	if p.Start == "" {
		return false // alive, as far as the PID tells
	}
	return processStart(p.PID) != p.Start
}

// processStart returns the boot ID and the start time of process pid, or ""
// where /proc does not tell.
func processStart(pid int) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
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
	return strings.TrimSpace(string(boot)) + ":" + f[19]
}

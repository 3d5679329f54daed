// Package vm is what dropback needs of a hypervisor to back up a running
// guest: its disks, one consistent point in time of all of them exported
// over NBD while the guest runs, dirty bitmaps that record what the guest
// writes between two backups, and the guest agent's filesystem freeze.
// vm/qemu implements it over QMP, vm/libvirt over libvirt's API; the NBD
// side (Reader) is shared. The engine sees none of this: it reads disks
// through engine.LiveReader, which Reader is.
package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors.
var (
	// ErrNotRunning means the guest is not running (shut off, or its
	// hypervisor is gone): there is nothing to take a point in time of.
	ErrNotRunning = errors.New("the guest is not running")
	// ErrUnreachable means the hypervisor's monitor or API cannot be
	// reached: its socket is missing, refuses, or held by another client.
	ErrUnreachable = errors.New("cannot reach the hypervisor")
	// ErrNoDevice means a chosen device is not a disk of the guest.
	ErrNoDevice = errors.New("no such disk device")
)

// Disk is one disk of a guest.
type Disk struct {
	// Device names the disk the way --device chooses it: QEMU's drive ID,
	// or its device ID for a -blockdev disk; libvirt's target (vda).
	Device string `json:"device"`
	// File is the image the hypervisor has open, "" when it is no file.
	File string `json:"file,omitempty"`
	// Format is the image format: "qcow2", "raw", ...
	Format string `json:"format"`
	// Size is the size the guest sees, in bytes.
	Size int64 `json:"size"`
	// ReadOnly disks (an ISO image, a read-only drive) are left out unless
	// chosen by name.
	ReadOnly bool `json:"read_only,omitempty"`
}

// PersistentBitmaps reports whether a disk of this format keeps dirty
// bitmaps across a restart of the guest: only qcow2 stores them.
func (d Disk) PersistentBitmaps() bool { return d.Format == "qcow2" }

// Guest is a running guest, reached through its hypervisor. A Guest is used
// by one goroutine at a time.
type Guest interface {
	// Disks lists the guest's disks.
	Disks(ctx context.Context) ([]Disk, error)
	// Running reports whether the guest runs; when it does not, status is
	// the hypervisor's word for its state ("paused", "shutdown", ...).
	Running(ctx context.Context) (running bool, status string, err error)
	// PointInTime freezes the guest's filesystems if asked and it can,
	// takes one point in time of every disk req names at the same
	// instant, thaws at once, and exports the point in time over NBD.
	// On error nothing of it is left in the guest but what a later
	// PointInTime clears away, and the filesystems are thawed.
	PointInTime(ctx context.Context, req Request) (PointInTime, error)
	// Close lets the hypervisor go.
	Close() error
}

// Request says what a point in time is of.
type Request struct {
	// Devices are the disks, by Disk.Device.
	Devices []string
	// Since maps a device to the dirty bitmap the previous backup of it
	// started: when that bitmap is there, whole and recording, the point
	// in time reports what changed since (Export.Since).
	Since map[string]string
	// Whole reads every disk whole, as if no bitmap said what changed;
	// the bitmaps in Since are still the last backup's, dropped once this
	// backup is stored.
	Whole bool
	// Freeze asks the guest agent to freeze the filesystems for the
	// instant the point in time is taken.
	Freeze bool
	// Scratch is a directory the hypervisor can write, for what the guest
	// overwrites while the point in time is read ("" for the system's
	// temporary directory).
	Scratch string
}

// PointInTime is a frozen view of a guest's disks, exported over NBD, that
// holds until End while the guest goes on writing.
type PointInTime interface {
	// Exports are the disks, in the order of Request.Devices.
	Exports() []Export
	// Frozen reports whether the guest agent froze the filesystems for the
	// instant the point in time was taken.
	Frozen() bool
	// Notices are what the user should know: no guest agent, a bitmap
	// missing or not whole, leftovers of an earlier backup cleared away.
	Notices() []string
	// Check reports whether the point in time still holds: whether it was
	// kept intact all along. A backup asks before it commits.
	Check(ctx context.Context) error
	// End releases the point in time. stored says whether the backup that
	// read it was stored: then the bitmaps it read changes from are
	// dropped and those it started are kept; otherwise the bitmaps it
	// started are dropped and the older ones kept, so that the next
	// backup still sees every change. It is safe to call more than once.
	End(ctx context.Context, stored bool) error
}

// Export is one disk of a point in time.
type Export struct {
	Device string
	Size   int64
	// Network and Addr reach the NBD server ("unix" and a socket path),
	// Name is the export.
	Network, Addr, Name string
	// Bitmap is the dirty bitmap started at the instant of the point in
	// time, for the next backup.
	Bitmap string
	// Since is the bitmap whose changes the export reports through
	// DirtyContext, "" when there is none to use (a full read).
	Since string
	// DirtyContext is the NBD metadata context of those changes.
	DirtyContext string
}

// Choose returns the disks devices names, in that order, or every writable
// disk when devices is empty. A name that is no disk of the guest gives an
// error wrapping ErrNoDevice.
func Choose(disks []Disk, devices []string) ([]Disk, error) {
	if len(devices) == 0 {
		var out []Disk
		for _, d := range disks {
			if !d.ReadOnly {
				out = append(out, d)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: the guest has no writable disk", ErrNoDevice)
		}
		return out, nil
	}
	var out []Disk
	for _, name := range devices {
		i := IndexOf(disks, name)
		if i < 0 {
			return nil, fmt.Errorf("%w: the guest has no disk %q (it has %s)", ErrNoDevice, name, names(disks))
		}
		out = append(out, disks[i])
	}
	return out, nil
}

// IndexOf returns the index of the disk named device, or -1.
func IndexOf(disks []Disk, device string) int {
	for i, d := range disks {
		if d.Device == device {
			return i
		}
	}
	return -1
}

func names(disks []Disk) string {
	var ns []string
	for _, d := range disks {
		ns = append(ns, d.Device)
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

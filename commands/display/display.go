// Package display says how each resource prints: the columns of its text
// table (every one selectable with --format) and its JSON, which is the
// provider type itself so that field names follow the DigitalOcean API.
package display

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// HostColumns are the columns of hosts list and hosts get.
var HostColumns = []output.Column[provider.Host]{
	{Key: "ID", Header: "ID", Value: func(h provider.Host) string { return strconv.Itoa(h.ID) }},
	{Key: "Name", Header: "Name", Value: func(h provider.Host) string { return h.Name }},
	{Key: "Disks", Header: "Disks", Value: func(h provider.Host) string { return strconv.Itoa(len(h.Disks)) }},
	{Key: "Size", Header: "Size", Value: hostSize},
	{Key: "Backups", Header: "Backups", Value: backupState},
	{Key: "Created", Header: "Created", Value: func(h provider.Host) string { return output.Time(h.CreatedAt) }},
	{Key: "Status", Header: "Status", Extra: true, Value: func(h provider.Host) string { return output.OrNone(h.Status) }},
	{Key: "Region", Header: "Region", Extra: true, Value: func(h provider.Host) string { return output.OrNone(h.Region) }},
	{Key: "Plan", Header: "Plan", Extra: true, Value: func(h provider.Host) string { return planOf(h.BackupPolicy) }},
	{Key: "NextWindow", Header: "Next Window", Extra: true, Value: func(h provider.Host) string { return windowStart(h.NextBackupWindow) }},
	{Key: "LastError", Header: "Last Error", Extra: true, Value: lastError},
	{Key: "Paths", Header: "Paths", Extra: true, Value: diskPaths},
	{Key: "Kind", Header: "Kind", Extra: true, Value: func(h provider.Host) string { return output.OrNone(h.Kind) }},
	// doctl's Droplet column that dropback has.
	{Key: "Disk", Header: "Disk", Doctl: true, Value: func(h provider.Host) string { return hostGigabytes(h) }},
}

// lastError is a host's last scheduled backup that failed, with its time.
func lastError(h provider.Host) string {
	if h.LastErrorAt == nil {
		return output.OrNone("")
	}
	return output.Time(*h.LastErrorAt) + " " + h.LastError
}

// Hosts displays a list of hosts.
func Hosts(hs []provider.Host) output.Displayable {
	out := make([]provider.Host, len(hs))
	for i, h := range hs {
		out[i] = withDisks(h)
	}
	return output.List(HostColumns, out)
}

// Host displays one host; the last error too, when it has one.
func Host(h *provider.Host) output.Displayable {
	cols := HostColumns
	if h.LastErrorAt != nil {
		cols = slices.Clone(HostColumns)
		for i := range cols {
			if cols[i].Key == "LastError" {
				cols[i].Extra = false
			}
		}
	}
	return output.One(cols, withDisks(*h))
}

// withDisks makes a host's disks JSON "[]" rather than null.
func withDisks(h provider.Host) provider.Host {
	if h.Disks == nil {
		h.Disks = []provider.Disk{}
	}
	return h
}

// hostSize is the size of a host's disks, or none when the size of one
// of them is not known.
func hostSize(h provider.Host) string {
	n, ok := hostBytes(h)
	if !ok {
		return output.None
	}
	return output.Bytes(n)
}

func hostGigabytes(h provider.Host) string {
	n, ok := hostBytes(h)
	if !ok {
		return output.None
	}
	return strconv.FormatInt(n>>30, 10)
}

// hostBytes sums the sizes of a host's disks; ok is false when the size of
// one of them is not known.
func hostBytes(h provider.Host) (n int64, ok bool) {
	for _, d := range h.Disks {
		if d.SizeBytes == nil {
			return 0, false
		}
		n += *d.SizeBytes
	}
	return n, true
}

func diskPaths(h provider.Host) string {
	var paths []string
	for _, d := range h.Disks {
		if d.Path != "" {
			paths = append(paths, d.Path)
		} else {
			paths = append(paths, d.Name)
		}
	}
	return output.OrNone(strings.Join(paths, ","))
}

// backupState is "enabled", "failing" when the last scheduled backup
// failed and none was taken since, or none.
func backupState(h provider.Host) string {
	if h.BackupEnabled && h.LastErrorAt != nil {
		return "failing"
	}
	return enabled(h.BackupEnabled)
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return output.None
}

func planOf(p *provider.Policy) string {
	if p == nil {
		return output.None
	}
	return output.OrNone(p.Plan)
}

func windowStart(w *provider.Window) string {
	if w == nil {
		return output.None
	}
	return output.Time(w.Start)
}

func windowEnd(w *provider.Window) string {
	if w == nil {
		return output.None
	}
	return output.Time(w.End)
}

// BackupColumns are the columns of backups and snapshots.
var BackupColumns = []output.Column[provider.Backup]{
	{Key: "ID", Header: "ID", Value: func(b provider.Backup) string { return strconv.Itoa(b.ID) }},
	{Key: "Name", Header: "Name", Value: func(b provider.Backup) string { return output.OrNone(b.Name) }},
	{Key: "Type", Header: "Type", Value: func(b provider.Backup) string { return b.Type }},
	{Key: "Host", Header: "Host", Value: backupHost},
	{Key: "Created", Header: "Created", Value: func(b provider.Backup) string { return output.Time(b.CreatedAt) }},
	{Key: "Size", Header: "Size", Value: backupSize},
	{Key: "Status", Header: "Status", Value: func(b provider.Backup) string { return output.OrNone(b.Status) }},
	{Key: "HostID", Header: "Host ID", Extra: true, Value: func(b provider.Backup) string { return idOrNone(b.HostID) }},
	{Key: "MinDiskSize", Header: "Min Disk Size", Extra: true, Value: func(b provider.Backup) string { return fmt.Sprintf("%d GB", b.MinDiskSize) }},
	{Key: "New", Header: "New", Extra: true, Value: func(b provider.Backup) string { return bytesOrNone(b.NewBytes) }},
	{Key: "Disks", Header: "Disks", Extra: true, Value: func(b provider.Backup) string { return strconv.Itoa(len(b.Disks)) }},
	{Key: "Consistency", Header: "Consistency", Extra: true, Value: func(b provider.Backup) string { return output.OrNone(b.Consistency) }},
	{Key: "Read", Header: "Read", Extra: true, Value: backupRead},
	// doctl's image columns (doctl compute droplet backups, image get).
	{Key: "Distribution", Header: "Distribution", Doctl: true, Value: func(b provider.Backup) string { return b.Distribution }},
	{Key: "Slug", Header: "Slug", Doctl: true, Value: func(b provider.Backup) string { return deref(b.Slug) }},
	{Key: "Public", Header: "Public", Doctl: true, Value: func(b provider.Backup) string { return strconv.FormatBool(b.Public) }},
	{Key: "MinDisk", Header: "Min Disk", Doctl: true, Value: func(b provider.Backup) string { return strconv.Itoa(b.MinDiskSize) }},
	// doctl's snapshot columns (doctl compute snapshot list).
	{Key: "CreatedAt", Header: "Created at", Doctl: true, Value: func(b provider.Backup) string { return output.Time(b.CreatedAt) }},
	{Key: "Regions", Header: "Regions", Doctl: true, Value: func(b provider.Backup) string { return fmt.Sprint(nonNil(b.Regions)) }},
	{Key: "ResourceId", Header: "Resource ID", Doctl: true, Value: func(b provider.Backup) string { return b.ResourceID }},
	{Key: "ResourceType", Header: "Resource Type", Doctl: true, Value: func(b provider.Backup) string { return b.ResourceType }},
	{Key: "Tags", Header: "Tags", Doctl: true, Value: func(b provider.Backup) string { return strings.Join(b.Tags, ",") }},
}

// Backups displays a list of backups or snapshots.
func Backups(bs []provider.Backup) output.Displayable {
	out := make([]provider.Backup, len(bs))
	for i, b := range bs {
		out[i] = b.WithLists()
	}
	return output.List(BackupColumns, out)
}

// Backup displays one backup or snapshot.
func Backup(b *provider.Backup) output.Displayable {
	cols := BackupColumns
	if b.Consistency != "" { // a running guest's: say how consistent, and what was read
		cols = slices.Clone(BackupColumns)
		for i := range cols {
			if cols[i].Key == "Consistency" || cols[i].Key == "Read" {
				cols[i].Extra = false
			}
		}
	}
	return output.One(cols, b.WithLists())
}

// backupRead is what a backup of a running guest read of its disks: every
// byte that may hold data, or only what changed since an earlier backup.
func backupRead(b provider.Backup) string {
	if b.Consistency == "" {
		return output.None
	}
	var n int64
	for _, d := range b.Disks {
		n += d.ReadBytes
	}
	return output.Bytes(n)
}

// backupHost names the host of a backup, or none when it no longer exists.
func backupHost(b provider.Backup) string {
	if b.HostID == 0 && b.HostName == "" {
		return output.None
	}
	return nameOrID(b.HostName, b.HostID)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// nameOrID names a host by its name, or by its ID when the name is unknown.
func nameOrID(name string, id int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(id)
}

// idOrNone prints an ID, or none for 0 (unknown).
func idOrNone(id int) string {
	if id == 0 {
		return output.None
	}
	return strconv.Itoa(id)
}

// backupSize is the data a backup holds: exact where the context knows it
// in bytes (the engine), else the API's size_gigabytes.
func backupSize(b provider.Backup) string {
	if b.SizeBytes != nil {
		return output.Bytes(*b.SizeBytes)
	}
	return output.Bytes(gigabytes(b.SizeGigabytes))
}

// bytesOrNone is n in bytes, or "—" where the context does not say.
func bytesOrNone(n *int64) string {
	if n == nil {
		return "—"
	}
	return output.Bytes(*n)
}

// gigabytes turns the API's size_gigabytes (binary gigabytes) into bytes.
func gigabytes(g float64) int64 { return int64(g * (1 << 30)) }

// ActionColumns are the columns of actions.
var ActionColumns = []output.Column[provider.Action]{
	{Key: "ID", Header: "ID", Value: func(a provider.Action) string { return strconv.Itoa(a.ID) }},
	{Key: "Type", Header: "Type", Value: func(a provider.Action) string { return a.Type }},
	{Key: "Status", Header: "Status", Value: func(a provider.Action) string { return a.Status }},
	{Key: "Resource", Header: "Resource", Value: actionResource},
	{Key: "Started", Header: "Started", Value: func(a provider.Action) string { return output.Time(a.StartedAt) }},
	{Key: "Completed", Header: "Completed", Value: func(a provider.Action) string { return output.TimePtr(a.CompletedAt) }},
	// Why an errored action failed, in the default table: it is the
	// first thing its reader wants.
	{Key: "Error", Header: "Error", Value: func(a provider.Action) string { return output.OrNone(a.Error) }},
	{Key: "ResourceType", Header: "Resource Type", Extra: true, Value: func(a provider.Action) string { return output.OrNone(a.ResourceType) }},
	{Key: "ResourceID", Header: "Resource ID", Extra: true, Value: func(a provider.Action) string { return strconv.Itoa(a.ResourceID) }},
	{Key: "Region", Header: "Region", Extra: true, Value: func(a provider.Action) string { return output.OrNone(a.Region) }},

	// doctl's action columns.
	{Key: "StartedAt", Header: "Started At", Doctl: true, Value: func(a provider.Action) string { return output.Time(a.StartedAt) }},
	{Key: "CompletedAt", Header: "Completed At", Doctl: true, Value: func(a provider.Action) string { return output.TimePtr(a.CompletedAt) }},
}

// Actions displays a list of actions.
func Actions(as []provider.Action) output.Displayable { return output.List(ActionColumns, as) }

// Action displays one action.
func Action(a *provider.Action) output.Displayable { return output.One(ActionColumns, *a) }

func actionResource(a provider.Action) string {
	if a.ResourceType == "" && a.ResourceID == 0 {
		return output.None
	}
	return fmt.Sprintf("%s %d", a.ResourceType, a.ResourceID)
}

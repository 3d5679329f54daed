package display

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// RepoStatsColumns are the rows of repo stats, shown as "key value" lines.
var RepoStatsColumns = []output.Column[provider.RepoStats]{
	{Key: "Location", Header: "Location", Value: func(s provider.RepoStats) string { return s.Location }},
	{Key: "Format", Header: "Format", Value: func(s provider.RepoStats) string { return strconv.Itoa(s.FormatVersion) }},
	{Key: "Encryption", Header: "Encryption", Value: func(s provider.RepoStats) string { return output.OrNone(s.Encryption) }},
	{Key: "ChunkSize", Header: "Chunk Size", Value: func(s provider.RepoStats) string { return output.Bytes(s.ChunkSize) }},
	{Key: "Hosts", Header: "Hosts", Value: func(s provider.RepoStats) string { return strconv.Itoa(s.Hosts) }},
	{Key: "Backups", Header: "Backups", Value: func(s provider.RepoStats) string { return strconv.Itoa(s.Backups) }},
	{Key: "Snapshots", Header: "Snapshots", Value: func(s provider.RepoStats) string { return strconv.Itoa(s.Snapshots) }},
	{Key: "Logical", Header: "Logical Size", Value: func(s provider.RepoStats) string { return output.Bytes(s.LogicalBytes) }},
	{Key: "Data", Header: "Data", Value: func(s provider.RepoStats) string { return output.Bytes(s.DataBytes) }},
	{Key: "Unique", Header: "Unique Data", Value: func(s provider.RepoStats) string { return output.Bytes(s.UniqueBytes) }},
	{Key: "Stored", Header: "Stored", Value: func(s provider.RepoStats) string { return output.Bytes(s.StoredBytes) }},
	{Key: "Chunks", Header: "Chunks", Value: func(s provider.RepoStats) string { return strconv.FormatInt(s.Chunks, 10) }},
	{Key: "Packs", Header: "Packs", Value: func(s provider.RepoStats) string { return strconv.FormatInt(s.Packs, 10) }},
	{Key: "DedupRatio", Header: "Dedup Ratio", Value: func(s provider.RepoStats) string { return ratio(s.DedupRatio) }},
	{Key: "CompressionRatio", Header: "Compression Ratio", Value: func(s provider.RepoStats) string { return ratio(s.CompressionRatio) }},
	{Key: "Reclaimed", Header: "Reclaimed by GC", Value: func(s provider.RepoStats) string { return output.Bytes(s.ReclaimedBytes) }},
}

// RepoStats displays repository statistics.
func RepoStats(s *provider.RepoStats) output.Displayable {
	return output.KeyValue(RepoStatsColumns, *s)
}

// ratio prints a ratio, or none when there is nothing to compare (an empty
// repository).
func ratio(r float64) string {
	if r == 0 {
		return output.None
	}
	return fmt.Sprintf("%.2fx", r)
}

// VerifyColumns are the columns of backups verify.
var VerifyColumns = []output.Column[provider.VerifiedBackup]{
	{Key: "ID", Header: "ID", Value: func(v provider.VerifiedBackup) string { return strconv.Itoa(v.ID) }},
	{Key: "Host", Header: "Host", Value: func(v provider.VerifiedBackup) string { return output.OrNone(v.HostName) }},
	{Key: "Status", Header: "Status", Value: func(v provider.VerifiedBackup) string { return v.Status }},
	{Key: "Problem", Header: "Problem", Value: func(v provider.VerifiedBackup) string { return output.OrNone(v.Problem) }},
}

// Verify displays a verify report: a table of verdicts, the whole report as
// JSON.
func Verify(r *provider.VerifyReport) output.Displayable {
	v := *r
	v.Backups = nonNil(v.Backups)
	v.Problems = nonNil(v.Problems)
	return output.WithJSON(output.List(VerifyColumns, v.Backups), &v)
}

// nonNil makes an empty list JSON "[]" rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// RestoreColumns are the columns of backups restore.
var RestoreColumns = []output.Column[provider.RestoreResult]{
	{Key: "Action", Header: "Action", Value: func(r provider.RestoreResult) string { return strconv.Itoa(r.Action.ID) }},
	{Key: "Status", Header: "Status", Value: func(r provider.RestoreResult) string { return r.Action.Status }},
	{Key: "Backup", Header: "Backup", Value: func(r provider.RestoreResult) string { return strconv.Itoa(r.BackupID) }},
	{Key: "Host", Header: "Host", Value: func(r provider.RestoreResult) string { return strconv.Itoa(r.HostID) }},
	{Key: "Disks", Header: "Disks", Value: func(r provider.RestoreResult) string { return strconv.Itoa(len(r.Disks)) }},
	{Key: "Written", Header: "Written", Value: func(r provider.RestoreResult) string { return output.Bytes(r.BytesWritten) }},
	// doctl's action columns, of the restore's action (doctl compute
	// droplet-action restore prints the action).
	{Key: "ID", Header: "ID", Doctl: true, Value: func(r provider.RestoreResult) string { return strconv.Itoa(r.Action.ID) }},
	{Key: "Type", Header: "Type", Doctl: true, Value: func(r provider.RestoreResult) string { return r.Action.Type }},
	{Key: "StartedAt", Header: "Started At", Doctl: true, Value: func(r provider.RestoreResult) string { return output.Time(r.Action.StartedAt) }},
	{Key: "CompletedAt", Header: "Completed At", Doctl: true, Value: func(r provider.RestoreResult) string { return output.TimePtr(r.Action.CompletedAt) }},
	{Key: "ResourceID", Header: "Resource ID", Doctl: true, Value: func(r provider.RestoreResult) string { return strconv.Itoa(r.Action.ResourceID) }},
	{Key: "ResourceType", Header: "Resource Type", Doctl: true, Value: func(r provider.RestoreResult) string { return output.OrNone(r.Action.ResourceType) }},
	{Key: "Region", Header: "Region", Doctl: true, Value: func(r provider.RestoreResult) string { return output.OrNone(r.Action.Region) }},
}

// Restore displays the outcome of a restore.
func Restore(r *provider.RestoreResult) output.Displayable {
	return output.One(RestoreColumns, *r)
}

// Create displays the outcome of an on-demand backup: the backup as a table,
// backup and action as JSON.
func Create(r *provider.CreateResult) output.Displayable {
	v := *r
	v.Backup = v.Backup.WithLists()
	return output.WithJSON(Backup(&r.Backup), &v)
}

// GCColumns are the columns of repo gc.
var GCColumns = []output.Column[provider.GCResult]{
	{Key: "Action", Header: "Action", Value: func(r provider.GCResult) string { return strconv.Itoa(r.Action.ID) }},
	{Key: "Status", Header: "Status", Value: func(r provider.GCResult) string { return r.Action.Status }},
	{Key: "DeletedPacks", Header: "Deleted Packs", Value: func(r provider.GCResult) string { return strconv.Itoa(r.DeletedPacks) }},
	{Key: "RewrittenPacks", Header: "Rewritten Packs", Value: func(r provider.GCResult) string { return strconv.Itoa(r.RewrittenPacks) }},
	{Key: "Reclaimed", Header: "Reclaimed", Value: func(r provider.GCResult) string { return output.Bytes(r.ReclaimedBytes) }},
}

// GC displays the outcome of a garbage collection.
func GC(r *provider.GCResult) output.Displayable { return output.One(GCColumns, *r) }

// Run displays a scheduling pass: the backups it took as a table, the whole
// report as JSON.
func Run(r *provider.RunReport) output.Displayable {
	v := *r
	v.Backups = nonNil(v.Backups)
	v.Expired = nonNil(v.Expired)
	v.Errors = nonNil(v.Errors)
	v.Skipped = nonNil(v.Skipped)
	for i := range v.Backups {
		v.Backups[i] = v.Backups[i].WithLists()
	}
	return output.WithJSON(Backups(v.Backups), &v)
}

// SummaryLine is a backup's summary as one line that fits in width
// columns where it can: "Read 1.5 GiB, new 60.0 MiB, stored 21.3 MiB in 4.2s
// (384.0 MiB/s)", without the speed, then without the time, when narrower.
func SummaryLine(s *provider.BackupSummary, width int) string {
	took := fmt.Sprintf("%.1fs", s.Seconds)
	if s.Seconds < 1 {
		took = fmt.Sprintf("%dms", int(s.Seconds*1000))
	} else if s.Seconds >= 10 {
		took = output.FormatDuration(time.Duration(s.Seconds * float64(time.Second)))
	}
	base := fmt.Sprintf("Read %s, new %s, stored %s", output.Bytes(s.ReadBytes), output.Bytes(s.NewBytes), output.Bytes(s.StoredBytes))
	lines := []string{
		fmt.Sprintf("%s in %s (%s/s)", base, took, output.Bytes(s.BytesPerSecond)),
		fmt.Sprintf("%s in %s", base, took),
		base,
	}
	for _, l := range lines {
		if len(l) < width {
			return l
		}
	}
	return base
}

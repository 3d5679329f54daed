package display

import (
	"strconv"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// exportRow is one disk of an export, with the backup it is of.
type exportRow struct {
	provider.ExportedDisk
	BackupID int
	Format   string
}

// ExportColumns are the columns of backups export: one row per disk.
var ExportColumns = []output.Column[exportRow]{
	{Key: "Backup", Header: "Backup", Value: func(r exportRow) string { return strconv.Itoa(r.BackupID) }},
	{Key: "Disk", Header: "Disk", Value: func(r exportRow) string { return r.Name }},
	{Key: "Format", Header: "Format", Value: func(r exportRow) string { return r.Format }},
	{Key: "Size", Header: "Size", Value: func(r exportRow) string { return output.Bytes(r.SizeBytes) }},
	{Key: "Image", Header: "Image", Value: func(r exportRow) string { return output.Bytes(r.ImageBytes) }},
	{Key: "Path", Header: "Path", Value: func(r exportRow) string { return r.Path }},
}

// Export displays the outcome of an export: a row per disk, the whole
// result as JSON.
func Export(r *provider.ExportResult) output.Displayable {
	rows := make([]exportRow, len(r.Disks))
	for i, d := range r.Disks {
		rows[i] = exportRow{ExportedDisk: d, BackupID: r.BackupID, Format: r.Format}
	}
	return output.WithJSON(output.List(ExportColumns, rows), r)
}

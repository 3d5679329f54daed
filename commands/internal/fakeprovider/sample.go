package fakeprovider

import (
	"time"

	"github.com/dropback/dropback/pkg/provider"
)

func sampleHosts() []provider.Host {
	return []provider.Host{
		{
			ID: 1, Name: "web-1", Status: "active", BackupEnabled: true,
			Disks:        []provider.Disk{{Name: "vda", Path: "/var/lib/libvirt/images/web-1.img", SizeBytes: provider.Bytes(20 << 30)}},
			BackupPolicy: &provider.Policy{Plan: "daily", Weekday: "", Hour: 4, WindowLengthHours: 4, RetentionPeriodDays: 7},
			NextBackupWindow: &provider.Window{
				Start: Epoch.Add(28 * time.Hour), End: Epoch.Add(32 * time.Hour),
			},
			CreatedAt: Epoch.Add(-30 * 24 * time.Hour),
		},
		{
			ID: 2, Name: "db-1", Status: "active",
			Disks: []provider.Disk{
				{Name: "vda", Path: "/dev/vg0/db-root", SizeBytes: provider.Bytes(8 << 30)},
				{Name: "vdb", Path: "/dev/vg0/db-data", SizeBytes: provider.Bytes(100 << 30)},
			},
			CreatedAt: Epoch.Add(-10 * 24 * time.Hour),
		},
	}
}

func sampleBackups() []provider.Backup {
	b := func(id, hostID int, host string, day int, typ string) provider.Backup {
		return provider.Backup{
			ID: id, Name: host + " " + Epoch.Add(time.Duration(day)*24*time.Hour).Format("2006-01-02"),
			Type: typ, Status: "available", CreatedAt: Epoch.Add(time.Duration(day)*24*time.Hour + 5*time.Hour + 12*time.Minute),
			SizeGigabytes: 3.25, MinDiskSize: 20, HostID: hostID, HostName: host,
		}
	}
	return []provider.Backup{
		b(101, 1, "web-1", -2, provider.TypeBackup),
		b(102, 1, "web-1", -1, provider.TypeBackup),
		b(201, 2, "db-1", -1, provider.TypeBackup),
		b(301, 1, "web-1", -5, provider.TypeSnapshot),
	}
}

func sampleActions() []provider.Action {
	done := Epoch.Add(-24*time.Hour + 5*time.Hour + 20*time.Minute)
	return []provider.Action{
		{ID: 1001, Type: "backup", Status: provider.StatusCompleted, StartedAt: Epoch.Add(-24*time.Hour + 5*time.Hour + 12*time.Minute),
			CompletedAt: &done, ResourceID: 102, ResourceType: "backup"},
		{ID: 1002, Type: "restore", Status: provider.StatusInProgress, StartedAt: Epoch.Add(-time.Hour),
			ResourceID: 1, ResourceType: "host"},
		{ID: 1003, Type: "convert", Status: provider.StatusErrored, StartedAt: Epoch.Add(-2 * time.Hour),
			CompletedAt: &done, ResourceID: 201, ResourceType: "backup", Error: "backup 201 is damaged"},
	}
}

func sampleSupported() []provider.SupportedPolicy {
	days := []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
	starts := []int{0, 4, 8, 12, 16, 20}
	return []provider.SupportedPolicy{
		{Name: "daily", PossibleWindowStarts: starts, WindowLengthHours: 4, RetentionPeriodDays: 7, PossibleDays: []string{}},
		{Name: "weekly", PossibleWindowStarts: starts, WindowLengthHours: 4, RetentionPeriodDays: 28, PossibleDays: days},
	}
}

func sampleStats() provider.RepoStats {
	return provider.RepoStats{
		Location: "/srv/dropback/repo", FormatVersion: 2, Encryption: "xaes-256-gcm", ChunkSize: 1 << 20,
		Hosts: 2, Backups: 3, Snapshots: 1,
		LogicalBytes: 400 << 30, DataBytes: 60 << 30, UniqueBytes: 21 << 30, StoredBytes: 9 << 30,
		Chunks: 21504, Packs: 300, DedupRatio: 2.86, CompressionRatio: 2.33, ReclaimedBytes: 512 << 20,
	}
}

package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dropback/dropback/pkg/provider"
)

// Latest is the backup argument that names a host's newest backup.
const Latest = "latest"

// BackupRefUse is the usage of a verb's backup arguments, for its Use line:
// every verb that names one backup takes them this way.
const BackupRefUse = "[<host>] <id|latest>"

// BackupRefHelp says, for a verb's long help, how a backup is named.
const BackupRefHelp = `A backup is named by its host and its ID or latest (the host's newest
backup), or by its ID alone. A host that was removed is still named by its
name or ID for the backups it left.`

// BackupRef is one backup as a command's arguments name it: `<host>
// <id|latest>`, or a bare `<id>`. Every verb that names one backup (get,
// verify, restore, convert, delete, export, serve, mount) parses its
// arguments with ParseBackupRef and resolves them with FindBackup, so that
// all of them take the same forms.
type BackupRef struct {
	// Host is a host name or ID, or "" for a bare ID.
	Host string
	// Backup is a backup ID, or Latest (only with a host).
	Backup string
}

// BackupRefArgs are the Args of a verb that takes one backup and nothing
// else.
var BackupRefArgs = RangeArgs(1, 2, "a backup: <host> <id|latest>, or a backup ID")

// ParseBackupRef parses a backup's arguments, one (an ID) or two (a host,
// and an ID or latest), as a usage error when they are neither.
func ParseBackupRef(args []string) (BackupRef, error) {
	switch len(args) {
	case 1:
		if args[0] == Latest {
			return BackupRef{}, FlagErrorf("latest needs a host: give <host> latest")
		}
		if _, err := ParseID("backup ID", args[0]); err != nil {
			return BackupRef{}, FlagErrorf("invalid backup ID %q: give a backup ID, or a host and a backup ID or latest", Short(args[0]))
		}
		return BackupRef{Backup: args[0]}, nil
	case 2:
		if args[1] != Latest {
			if _, err := ParseID("backup ID", args[1]); err != nil {
				return BackupRef{}, FlagErrorf("invalid backup %q: give a backup ID or latest", Short(args[1]))
			}
		}
		return BackupRef{Host: args[0], Backup: args[1]}, nil
	}
	return BackupRef{}, FlagErrorf("name a backup: <host> <id|latest>, or a backup ID")
}

// ID is the backup's ID, or 0 for latest.
func (r BackupRef) ID() int {
	id, _ := strconv.Atoi(r.Backup)
	return id
}

// String names the backup for a message: "backup 42 of host web-1", "the
// latest backup of host web-1", "backup 42".
func (r BackupRef) String() string {
	switch {
	case r.Host == "":
		return "backup " + Short(r.Backup)
	case r.Backup == Latest:
		return "the latest backup of host " + Short(r.Host)
	}
	return fmt.Sprintf("backup %s of host %s", Short(r.Backup), Short(r.Host))
}

// FindBackup resolves r with the context's provider.Backups.FindBackup: the
// backup itself, so that a command names it (ID and date) before it acts,
// and acts on that ID even if a newer backup appears meanwhile.
func FindBackup(ctx context.Context, p provider.Backups, r BackupRef) (*provider.Backup, error) {
	b, err := p.FindBackup(ctx, r.Host, r.Backup)
	if err != nil && r.Host == "" && errors.Is(err, provider.ErrNotFound) {
		// One argument is a backup's ID; the host's ID with the backup
		// left out looks the same.
		return nil, fmt.Errorf("find %s: %w; if %s is a host, name its backup too: %s latest", r, err, Short(r.Backup), Short(r.Backup))
	}
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", r, err)
	}
	return b, nil
}

// DescribeBackup names a resolved backup for a prompt or a notice: "backup
// 42 of host web-1 (2026-11-01 04:00 UTC)".
func DescribeBackup(b *provider.Backup) string {
	host := b.HostName
	if host == "" && b.HostID != 0 {
		host = strconv.Itoa(b.HostID)
	}
	s := fmt.Sprintf("%s %d", kindOf(b), b.ID)
	if host != "" {
		s += " of host " + Short(host)
	}
	return s + " (" + b.CreatedAt.UTC().Format("2006-01-02 15:04 MST") + ")"
}

func kindOf(b *provider.Backup) string {
	if b.Type == provider.TypeSnapshot {
		return "snapshot"
	}
	return "backup"
}

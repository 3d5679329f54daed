package provider

import (
	"encoding/json"
	"io"
	"net"
	"time"

	"github.com/dropback/dropback/pkg/progress"
)

// Host is a machine whose disks are backed up: a registered self-hosted host
// on the engine, a Droplet on DigitalOcean.
type Host struct {
	ID               int       `json:"id"`
	Name             string    `json:"name"`
	Status           string    `json:"status"`
	Disks            []Disk    `json:"disks"`
	BackupEnabled    bool      `json:"backup_enabled"`
	BackupPolicy     *Policy   `json:"backup_policy,omitempty"`
	NextBackupWindow *Window   `json:"next_backup_window,omitempty"`
	Region           string    `json:"region,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	// LastError is why the host's last scheduled backup failed, when no
	// backup was taken since (engine only).
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Notices are things the user should know about the host's disks
	// when it is added, such as a qcow2 image backed up as a file (engine
	// only).
	Notices []string `json:"notices,omitempty"`
	// Kind is what the engine reads the disks of: "disk" (files and block
	// devices), "qemu" or "libvirt" (a running guest). Empty on
	// DigitalOcean.
	Kind string `json:"kind,omitempty"`
}

// Disk is one disk of a host. Path is empty on DigitalOcean.
type Disk struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"`
	// SizeBytes is the size the guest sees; nil (JSON null) when it is not
	// known: the image is missing, or of a format whose size is not read.
	SizeBytes *int64 `json:"size_bytes"`
}

// Bytes returns n as a size for Disk.SizeBytes.
func Bytes(n int64) *int64 { return &n }

// Policy is a backup policy, named as in the DigitalOcean API.
type Policy struct {
	Plan                string `json:"plan"`
	Weekday             string `json:"weekday"`
	Hour                int    `json:"hour"`
	WindowLengthHours   int    `json:"window_length_hours"`
	RetentionPeriodDays int    `json:"retention_period_days"`
}

// Window is a backup window.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Backup types.
const (
	TypeBackup   = "backup"
	TypeSnapshot = "snapshot"
)

// Backup is one backup or snapshot of a host. Its JSON carries every field
// of DigitalOcean's image object (GET /v2/images/{id}) under the API's
// names, and those of its snapshot object (resource_id, resource_type),
// then dropback's own (host_id, host_name, and the engine's disks and
// new_bytes). The engine fills the image fields it has, and gives the
// others their empty values: no regions or tags, a null slug.
type Backup struct {
	ID            int       `json:"id"`
	Name          string    `json:"name"`
	Type          string    `json:"type"`
	Distribution  string    `json:"distribution"`
	Slug          *string   `json:"slug"`
	Public        bool      `json:"public"`
	Regions       []string  `json:"regions"`
	CreatedAt     time.Time `json:"created_at"`
	MinDiskSize   int       `json:"min_disk_size"`
	SizeGigabytes float64   `json:"size_gigabytes"`
	Description   string    `json:"description"`
	Tags          []string  `json:"tags"`
	Status        string    `json:"status"`
	ErrorMessage  string    `json:"error_message"`
	// ResourceID and ResourceType name what the backup is of, as the
	// snapshot object does: a Droplet's ID (a string, as the API has it)
	// and "droplet", or on the engine a host's ID and "host". They are
	// empty when that is unknown.
	ResourceID   string `json:"resource_id"`
	ResourceType string `json:"resource_type"`
	// HostID and HostName are the host the backup is of, 0 and "" when it
	// no longer exists.
	HostID   int    `json:"host_id"`
	HostName string `json:"host_name"`
	// Engine only (nil, and left out of JSON, on DigitalOcean): the data
	// the backup holds, exactly (size_gigabytes is the same in GiB,
	// rounded), per-disk detail, and what this backup added to the
	// repository. A backup of an empty disk holds 0 bytes, which JSON
	// gives as 0.
	SizeBytes *int64       `json:"size_bytes,omitempty"`
	Disks     []BackupDisk `json:"disks,omitempty"`
	NewBytes  *int64       `json:"new_bytes,omitempty"`
	// Consistency of a backup of a running guest: "application" (the
	// guest agent froze its filesystems) or "crash".
	Consistency string `json:"consistency,omitempty"`
}

// WithLists returns b with its Regions and Tags JSON "[]" rather than
// null.
func (b Backup) WithLists() Backup {
	if b.Regions == nil {
		b.Regions = []string{}
	}
	if b.Tags == nil {
		b.Tags = []string{}
	}
	return b
}

// BackupDisk is one disk inside an engine backup.
type BackupDisk struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
	DataBytes int64  `json:"data_bytes"`
	// ReadBytes is what a backup of a running guest read of the disk;
	// Since, when set, is the backup an incremental read is relative to
	// and the dirty bitmap that reported the changes.
	ReadBytes int64        `json:"read_bytes,omitempty"`
	Since     *BackupSince `json:"since,omitempty"`
	// Bitmap is the dirty bitmap (libvirt: checkpoint) the backup started
	// on the guest's disk, which the next backup reads changes from.
	Bitmap string `json:"bitmap,omitempty"`
}

// BackupSince is what an incremental read of a disk is relative to.
type BackupSince struct {
	BackupID int    `json:"backup_id"`
	Bitmap   string `json:"bitmap"`
}

// Action statuses, as DigitalOcean names them.
const (
	StatusInProgress = "in-progress"
	StatusCompleted  = "completed"
	StatusErrored    = "errored"
)

// Action is an asynchronous operation: a DigitalOcean action, or an engine job
// (create, restore, convert, gc) recorded in the repository.
type Action struct {
	ID           int        `json:"id"`
	Type         string     `json:"type"`
	Status       string     `json:"status"`
	StartedAt    time.Time  `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at"`
	ResourceID   int        `json:"resource_id"`
	ResourceType string     `json:"resource_type"`
	Region       string     `json:"region_slug,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// HostSpec describes a host to register (engine only).
type HostSpec struct {
	Name  string
	Disks []string
	// QMP registers a running QEMU guest by its QMP socket, Libvirt one by
	// its libvirt domain (LibvirtURI: the connection, "" for the system's);
	// Disks is then empty. Agent is the host end of the guest agent's
	// channel ("" finds it); Devices choose disks (none: every writable
	// one); Scratch is where the hypervisor keeps what the guest overwrites
	// during a backup. See docs/vms.md.
	QMP, Agent          string
	Libvirt, LibvirtURI string
	Devices             []string
	Scratch             string
}

// CreateOptions are the options of an on-demand backup.
type CreateOptions struct {
	// Progress, if not nil, is a counter the provider adds the backup's
	// bytes to, from any goroutine, as a "backup" job; the caller reads it
	// on its own schedule. A provider with nothing to count leaves it.
	Progress *progress.Counter
	// Time, when set, dates the backup (created_at) instead of now, as when
	// importing a history; retention and prune go by it.
	Time time.Time
	// AcceptResize allows a disk whose size differs from the host's
	// previous backup of it. Without it, such a backup fails with
	// ErrConfirm, as a disk that was swapped, truncated or detached would
	// otherwise become the host's newest backup.
	AcceptResize bool
	// AllowLive backs up a disk image that a running QEMU holds open for
	// writing as it is, mixing moments; without it such a backup fails
	// with ErrInUse.
	AllowLive bool
	// NoFreeze skips the guest agent's filesystem freeze of a running
	// guest: the backup is crash-consistent.
	NoFreeze bool
	// FullRead reads a running guest's disks whole, as if it had no dirty
	// bitmap; the next backup reads changes from the bitmap this one
	// starts.
	FullRead bool
}

// DeleteOptions are the options of BackupDeleter.DeleteBackups.
type DeleteOptions struct {
	// AllowLast lets a host's last backup be deleted, which the user was
	// asked about in so many words.
	AllowLast bool
}

// PruneOptions keep, of each host's backups, the newest of each of the last
// KeepDaily days and of the last KeepWeekly ISO weeks that have backups.
// Snapshots are always kept.
type PruneOptions struct {
	KeepDaily  int
	KeepWeekly int
	DryRun     bool
}

// CreateResult is the outcome of a backup.
type CreateResult struct {
	Backup  Backup         `json:"backup"`
	Action  Action         `json:"action"`
	Summary *BackupSummary `json:"summary,omitempty"`
	// Notices are things the user should know that did not fail the
	// backup: a crash-consistent backup of a guest without an agent, a
	// disk read whole because its bitmap was lost.
	Notices []string `json:"notices,omitempty"`
}

// BackupSummary is what one backup read and added to the repository, and
// how long it took (engine only).
type BackupSummary struct {
	// ReadBytes is what was read from the disks; holes are not read.
	ReadBytes int64 `json:"read_bytes"`
	// NewBytes is the data, uncompressed, that the repository did not
	// have; StoredBytes what it took there, compressed.
	NewBytes    int64   `json:"new_bytes"`
	StoredBytes int64   `json:"stored_bytes"`
	Seconds     float64 `json:"seconds"`
	// BytesPerSecond is ReadBytes over Seconds.
	BytesPerSecond int64 `json:"bytes_per_second"`
}

// AbandonedError is the error of a backup that failed or was stopped
// after it had written data: StoredBytes of it stay in the repository,
// referenced by no backup, until a gc reclaims them.
type AbandonedError struct {
	Err         error
	StoredBytes int64
}

func (e *AbandonedError) Error() string { return e.Err.Error() }
func (e *AbandonedError) Unwrap() error { return e.Err }

// RestoreRequest names what to restore and where.
type RestoreRequest struct {
	Host   string // host name or ID
	Backup string // backup ID or "latest"
	// To restores to a new path (a file for one disk, a directory for several)
	// instead of in place. Engine only.
	To string
	// ToNew creates a new host from the backup (DigitalOcean: a new Droplet).
	ToNew   string
	Size    string
	Region  string
	SSHKeys []string
	VPCUUID string
	Tags    []string
	// Force allows an in-place restore to overwrite the host's disks.
	Force bool
	// Progress, if not nil, counts the restore's bytes as a "restore" job,
	// as CreateOptions.Progress does a backup's.
	Progress *progress.Counter
}

// RestorePlan is what a restore would do: the backup, and each disk's
// target.
type RestorePlan struct {
	Backup  Backup          `json:"backup"`
	Targets []RestoreTarget `json:"targets"`
}

// RestoreTarget is where one disk of a backup would be restored.
type RestoreTarget struct {
	Disk string `json:"disk"`
	Path string `json:"path"`
	// InPlace is set for a disk of the host itself.
	InPlace bool `json:"in_place"`
	// Exists is set when something is at Path already, which the restore
	// overwrites.
	Exists bool `json:"exists"`
}

// RestoreResult is the outcome of a restore.
type RestoreResult struct {
	Action       Action        `json:"action"`
	BackupID     int           `json:"backup_id"`
	HostID       int           `json:"host_id"`
	Disks        []RestoreDisk `json:"disks,omitempty"`
	BytesWritten int64         `json:"bytes_written"`
	// Notices are things the user should know that did not stop the
	// restore, such as a repository it could not record it in.
	Notices []string `json:"notices,omitempty"`
}

// RestoreDisk reports one restored disk.
type RestoreDisk struct {
	Name         string `json:"name"`
	Path         string `json:"path"`
	SizeBytes    int64  `json:"size_bytes"`
	BytesWritten int64  `json:"bytes_written"`
}

// Image formats of ExportRequest.
const (
	ImageRaw   = "raw"
	ImageQcow2 = "qcow2"
)

// ExportRequest names a backup, and the format and place of its disks'
// images.
type ExportRequest struct {
	Host   string // host name or ID
	Backup string // backup ID or "latest"
	// Disk exports one disk, by its name; "" exports every disk.
	Disk   string
	Format string // ImageRaw or ImageQcow2
	// To is a new file for one disk, or a directory for several (files
	// named after the disks), or "-" for Stdout (one disk only).
	To     string
	Stdout io.Writer
	// Force allows replacing a file or symbolic link at a path.
	Force bool
	// Progress, if not nil, counts each disk's bytes as an "export" job.
	Progress *progress.Counter
}

// ExportResult is the outcome of an export.
type ExportResult struct {
	BackupID int            `json:"backup_id"`
	HostID   int            `json:"host_id"`
	Format   string         `json:"format"`
	Disks    []ExportedDisk `json:"disks"`
	// Notices are things the user should know that did not stop the
	// export.
	Notices []string `json:"notices,omitempty"`
}

// ExportedDisk reports one disk's image.
type ExportedDisk struct {
	Name      string `json:"name"`
	Path      string `json:"path"` // "-" for standard output
	SizeBytes int64  `json:"size_bytes"`
	// ImageBytes is the image's size: what was written to the file or
	// stream (a sparse raw file holds less on disk).
	ImageBytes int64 `json:"image_bytes"`
}

// ServeRequest names a backup and where to serve its disks over NBD.
type ServeRequest struct {
	Host     string
	Backup   string
	Disk     string // one disk by its name; "" serves every disk
	Listener net.Listener
	// CacheBytes bounds the decompressed chunks kept for reads; 0 lets the
	// context choose.
	CacheBytes int64
	// Ready is called once the disks are served.
	Ready func(ServedBackup)
	// Logf, if set, receives a line for each client dropped or read
	// failed.
	Logf func(format string, args ...any)
}

// ServedBackup is what ServeBackup or MountBackup serves.
type ServedBackup struct {
	BackupID int          `json:"backup_id"`
	HostID   int          `json:"host_id"`
	HostName string       `json:"host_name"`
	Disks    []ServedDisk `json:"disks"`
	// Notices are things the user should know that did not stop it.
	Notices []string `json:"notices,omitempty"`
}

// ServedDisk is one disk served: its NBD export name, or its file in a
// mount.
type ServedDisk struct {
	Name      string `json:"name"`
	SizeBytes int64  `json:"size_bytes"`
	// URI is the NBD URI of the export (ServeBackup, filled in by the
	// command that knows the listener's address).
	URI string `json:"uri,omitempty"`
	// Path is the disk's file (MountBackup).
	Path string `json:"path,omitempty"`
}

// MountRequest names a backup and where to mount its disks.
type MountRequest struct {
	Host   string
	Backup string
	Disk   string // one disk by its name; "" mounts every disk
	Dir    string
	Ready  func(ServedBackup)
	// Logf, if set, receives a line for each read that failed, and says
	// what keeps the mount from being unmounted.
	Logf func(format string, args ...any)
}

// VerifyOptions are the options of an integrity check.
type VerifyOptions struct {
	// Progress, if not nil, counts the bytes checked as a "verify" job, as
	// CreateOptions.Progress does a backup's.
	Progress *progress.Counter
}

// VerifyReport is the outcome of an integrity check.
type VerifyReport struct {
	Backups  []VerifiedBackup `json:"backups"`
	Chunks   int64            `json:"chunks_checked"`
	Bytes    int64            `json:"bytes_checked"`
	Problems []string         `json:"problems"`
	// Notices are things the user should know that are no damage.
	Notices []string `json:"notices,omitempty"`
}

// VerifiedBackup is one backup's verdict.
type VerifiedBackup struct {
	ID       int    `json:"id"`
	HostName string `json:"host_name"`
	Status   string `json:"status"` // "ok" or "damaged"
	Problem  string `json:"problem,omitempty"`
}

// PolicyRequest changes a backup policy. Nil fields are left as they are.
type PolicyRequest struct {
	Plan          *string
	Weekday       *string
	Hour          *int
	RetentionDays *int
}

// DisableOptions says what to do with existing backups when disabling.
type DisableOptions struct {
	KeepBackups   bool
	DeleteBackups bool
}

// HostPolicy is a host's policy as `policy get` shows it, named as the
// DigitalOcean API's droplet backup policy object: its JSON says
// droplet_id, as the API does, in every context (on the engine, the host's
// ID), and host_id and host_name too.
type HostPolicy struct {
	HostID           int     `json:"host_id"`
	HostName         string  `json:"host_name,omitempty"`
	BackupEnabled    bool    `json:"backup_enabled"`
	BackupPolicy     *Policy `json:"backup_policy,omitempty"`
	NextBackupWindow *Window `json:"next_backup_window,omitempty"`
}

// DropletID is the host's ID, under the API's name (for --template
// {{.DropletID}}, as doctl has it).
func (p HostPolicy) DropletID() int { return p.HostID }

// MarshalJSON writes droplet_id first, as the API does, then the fields.
func (p HostPolicy) MarshalJSON() ([]byte, error) {
	type fields HostPolicy
	return json.Marshal(struct {
		DropletID int `json:"droplet_id"`
		fields
	}{p.HostID, fields(p)})
}

// SupportedPolicy is one plan a provider offers, named as the DigitalOcean
// API's supported_policies object.
type SupportedPolicy struct {
	Name                 string   `json:"name"`
	PossibleWindowStarts []int    `json:"possible_window_starts"`
	WindowLengthHours    int      `json:"window_length_hours"`
	RetentionPeriodDays  int      `json:"retention_period_days"`
	PossibleDays         []string `json:"possible_days"`
}

// RepoInitOptions are the options of `repo init`.
type RepoInitOptions struct {
	ChunkSize int64
	// CreateBucket creates the bucket of an s3:// repository first.
	CreateBucket bool
	// Password is that of the repository's first key; nil makes a
	// repository that is not encrypted.
	Password []byte
	// KDF is Argon2id's parameters of the first key ("t=3,m=64MiB,p=4");
	// "" means the default.
	KDF string
	// Encryption is the AEAD of an encrypted repository ("xaes-256-gcm",
	// "xchacha20-poly1305"); "" means the default, xaes-256-gcm.
	Encryption string
}

// RepoKey is one key of an encrypted repository.
type RepoKey struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// KDF is the key's Argon2id parameters, "t=3,m=65536KiB,p=4".
	KDF string `json:"kdf"`
	// Current is set on the key the password opened.
	Current bool `json:"current"`
	// Problem says why the key cannot be read.
	Problem string `json:"problem,omitempty"`
}

// RepoUpgradeOptions are the options of `repo upgrade`.
type RepoUpgradeOptions struct {
	// Password is that of the encrypted repository's first key.
	Password []byte
	// KDF is Argon2id's parameters of that key; "" means the default.
	KDF string
	// Encryption is the AEAD of the encrypted repository, as in
	// RepoInitOptions; an upgrade cut short goes on with the one it
	// started with.
	Encryption string
	// Progress, if not nil, counts the bytes copied.
	Progress *progress.Counter
}

// RepoUpgradeResult is what an upgrade did.
type RepoUpgradeResult struct {
	Location    string `json:"location"`
	FromVersion int    `json:"from_version"`
	ToVersion   int    `json:"to_version"`
	Encryption  string `json:"encryption"`
	Backups     int    `json:"backups"`
	Hosts       int    `json:"hosts"`
	Actions     int    `json:"actions"`
	// CopiedBytes is the plain size of the chunks copied.
	CopiedBytes int64 `json:"copied_bytes"`
}

// RepoStats describes the engine repository.
type RepoStats struct {
	Location         string  `json:"location"`
	FormatVersion    int     `json:"format_version"`
	Encryption       string  `json:"encryption"`
	ChunkSize        int64   `json:"chunk_size"`
	Hosts            int     `json:"hosts"`
	Backups          int     `json:"backups"`
	Snapshots        int     `json:"snapshots"`
	LogicalBytes     int64   `json:"logical_bytes"`
	DataBytes        int64   `json:"data_bytes"`
	UniqueBytes      int64   `json:"unique_bytes"`
	StoredBytes      int64   `json:"stored_bytes"`
	Chunks           int64   `json:"chunks"`
	Packs            int64   `json:"packs"`
	DedupRatio       float64 `json:"dedup_ratio"`
	CompressionRatio float64 `json:"compression_ratio"`
	ReclaimedBytes   int64   `json:"reclaimed_bytes"`
}

// GCOptions are the options of `repo gc`.
type GCOptions struct {
	// Grace is how long an unreferenced object is kept before it is deleted,
	// so that a backup running now can still use it.
	Grace time.Duration
	// MinAge is how old an unreferenced object must be before it is
	// condemned at all; 0 is the engine's default, negative none.
	MinAge time.Duration
	// WaitLock is how long to wait for another gc to finish.
	WaitLock time.Duration
	// History is how long action and gc records are kept; 0 is the
	// engine's default (90 days), negative for ever.
	History time.Duration
}

// GCResult reports what a garbage collection did.
type GCResult struct {
	Action         Action `json:"action"`
	DeletedPacks   int    `json:"deleted_packs"`
	RewrittenPacks int    `json:"rewritten_packs"`
	ReclaimedBytes int64  `json:"reclaimed_bytes"`
	// DeferredFor names the running operation that kept gc from deleting
	// what it condemned, if one did.
	DeferredFor string `json:"deferred_for,omitempty"`
}

// RunOptions are the options of one scheduling pass.
type RunOptions struct {
	// Progress, if not nil, counts each backup's bytes as a job of its own,
	// as CreateOptions.Progress does.
	Progress *progress.Counter
}

// RunReport is what one scheduling pass did.
type RunReport struct {
	Backups []Backup  `json:"backups"`
	Expired []int     `json:"expired"`
	GC      *GCResult `json:"gc,omitempty"`
	// Skipped says why each enabled host was not backed up.
	Skipped []Skipped `json:"skipped"`
	Errors  []string  `json:"errors"`
	// Failures are the errors of Errors, in the same order, with the
	// provider sentinels they wrap (ErrAuth, ErrInvalid...), for the exit
	// code of a pass that did nothing else. A provider may leave it empty.
	Failures []error `json:"-"`
}

// Fail adds err to the errors of the pass.
func (r *RunReport) Fail(err error) {
	r.Errors = append(r.Errors, err.Error())
	r.Failures = append(r.Failures, err)
}

// Skipped is an enabled host a pass did not back up, and why.
type Skipped struct {
	HostID   int    `json:"host_id"`
	HostName string `json:"host_name"`
	Reason   string `json:"reason"`
}

// Package provider is what every dropback command talks to: the
// capabilities a context may have, and the types they speak in. Two
// implementations exist: provider/local drives the embedded block-image
// engine, provider/digitalocean drives DigitalOcean Droplet Backups through
// godo.
//
// A context implements the capabilities it has and no others: a command
// asks its context's Provider for the capability it needs (a type
// assertion), and one that is missing is a verb the context cannot do. No
// method exists only to say "unsupported".
//
// IDs of hosts, backups and actions are integers in both, as the DigitalOcean
// API has them. JSON field names follow the DigitalOcean API where the two
// overlap, so scripts that read -o json work in both contexts.
package provider

import (
	"context"
	"errors"
	"fmt"
)

// Context names.
const (
	ContextLocal        = "local"
	ContextDigitalOcean = "digitalocean"
)

// Sentinel errors. Providers wrap them with a message that says what was being
// done; commands map them to exit codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrAmbiguous    = errors.New("ambiguous name")
	ErrInvalid      = errors.New("invalid argument")
	ErrExists       = errors.New("already exists")
	ErrUnsupported  = errors.New("not supported")
	ErrCorrupt      = errors.New("repository damaged")
	ErrAuth         = errors.New("authentication failed")
	ErrActionFailed = errors.New("action errored")
	ErrTimeout      = errors.New("timed out")
	ErrNoRepo       = errors.New("repository not initialised")
	ErrConfirm      = errors.New("confirmation required")
	// ErrLocked means another process holds the repository's gc lease.
	ErrLocked = errors.New("repository locked")
	// ErrFormat means the repository is not a dropback repository, or is of
	// a newer format than this dropback reads.
	ErrFormat = errors.New("unsupported repository format")
	// ErrPassword means an encrypted repository could not be opened: no
	// password was given, or none of its keys opens with the one given.
	ErrPassword = errors.New("wrong password")
	// ErrInUse means a disk is in use by a running guest: a backup of it
	// as a plain file, or a restore over it, is refused.
	ErrInUse = errors.New("in use by a running guest")
)

// UnsupportedError is returned for a verb a context cannot do: a capability
// it lacks, or an option of a verb it has. Only names the kind of context
// that can ("engine", "DigitalOcean"), when there is one; Alternative what
// the user can do instead.
type UnsupportedError struct {
	Verb        string
	Context     string
	Only        string
	Alternative string
}

func (e *UnsupportedError) Error() string {
	msg := fmt.Sprintf("%s is not supported in the %s context", e.Verb, e.Context)
	if e.Only != "" {
		msg += fmt.Sprintf(" (%s only)", e.Only)
	}
	if e.Alternative != "" {
		msg += ": " + e.Alternative
	}
	return msg
}

func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// Provider is a context: the engine's repository, or a DigitalOcean
// account. What it can do is the capabilities below that it implements.
//
// Every method of every capability is safe for concurrent use. Host
// arguments are a name or an integer ID; a name that matches no host gives
// ErrNotFound, one that matches several gives ErrAmbiguous. Errors wrap the
// sentinels above.
type Provider interface {
	// Context is the name of the context this provider serves.
	Context() string
}

// Hosts lists and shows hosts. Every context has it.
type Hosts interface {
	// ListHosts lists the hosts. When some cannot be read (a damaged
	// repository) it returns the others and an error naming them.
	ListHosts(ctx context.Context) ([]Host, error)
	GetHost(ctx context.Context, host string) (*Host, error)
}

// HostRegistry registers and unregisters hosts (engine only: every Droplet
// of an account is a host for as long as it exists).
type HostRegistry interface {
	AddHost(ctx context.Context, spec HostSpec) (*Host, error)
	// RemoveHost unregisters a host. Its backups are kept unless
	// DeleteBackups; its snapshots are always kept.
	RemoveHost(ctx context.Context, host string, opts DisableOptions) error
}

// Backups lists, shows and restores backups. Every context has it.
type Backups interface {
	// ListBackups lists backups (not snapshots) of one host, or of all hosts
	// when host is "", oldest first. It may return the backups it could read
	// together with an error about the others.
	ListBackups(ctx context.Context, host string) ([]Backup, error)
	// GetBackup returns a backup or snapshot. Its host is unknown (HostID
	// 0) when the host no longer exists.
	GetBackup(ctx context.Context, id int) (*Backup, error)
	// FindBackup resolves a backup as every command addresses one: ref is
	// a backup ID or "latest", of host (a name or ID), or, when host is
	// "", a bare ID. Latest is the host's newest backup (on the engine, its
	// newest backup or snapshot); a host that has none gives ErrNotFound.
	// An ID that is another host's backup gives ErrInvalid and names that
	// host. On the engine, host may name a removed host, whose backups
	// outlive it.
	FindBackup(ctx context.Context, host, ref string) (*Backup, error)
	// RestoreBackup restores a backup or snapshot. An option the context
	// cannot do (req.To on DigitalOcean, req.ToNew on the engine) gives an
	// *UnsupportedError and changes nothing.
	RestoreBackup(ctx context.Context, req RestoreRequest) (*RestoreResult, error)
}

// RestorePlanner checks a restore without doing it (engine only): it
// resolves the backup and the paths it would write, and checks each as the
// restore itself would (engine.CheckTarget), so that a command can name
// them in its prompt and refuse what cannot succeed before it asks.
// Nothing is written or recorded.
type RestorePlanner interface {
	PlanRestore(ctx context.Context, req RestoreRequest) (*RestorePlan, error)
}

// BackupDeleter deletes backups (engine only: DigitalOcean expires backups
// by its plan's retention, and deletes snapshots with Snapshots).
type BackupDeleter interface {
	// DeleteBackups deletes the manifests of the given backups, one at a
	// time, in the order given; the data they alone referenced is
	// reclaimed by a later gc. A snapshot is refused (ErrInvalid). Right
	// before each delete it reads the host's other backups and snapshots
	// again: unless opts.AllowLast, a backup after which its host would
	// have none, or might (some cannot be read), is refused with ErrConfirm
	// and a message that says it is the host's last. It returns the
	// backups it deleted, with an error about the first it did not; the
	// rest are left.
	DeleteBackups(ctx context.Context, ids []int, opts DeleteOptions) ([]Backup, error)
	// ListOrphaned lists the backups and snapshots whose host was removed,
	// oldest first; with an error naming those that cannot be read.
	ListOrphaned(ctx context.Context) ([]Backup, error)
}

// BackupTaker takes on-demand backups (engine only: DigitalOcean takes
// backups on its schedule; see SnapshotTaker).
type BackupTaker interface {
	CreateBackup(ctx context.Context, host string, opts CreateOptions) (*CreateResult, error)
}

// Verifier checks backups by reading them back (engine only).
type Verifier interface {
	// VerifyBackups checks the given backups, or the whole repository when
	// ids is empty. Damage is reported in the report, with a nil error; the
	// error is for failures to run the check at all.
	VerifyBackups(ctx context.Context, ids []int, opts VerifyOptions) (*VerifyReport, error)
}

// Pruner deletes backups by a daily and weekly count (engine only:
// DigitalOcean keeps backups by the retention of the plan).
type Pruner interface {
	// PruneBackups deletes the backups of a host (every host when host is
	// "") that opts does not keep, and returns them. With DryRun it only
	// returns them.
	PruneBackups(ctx context.Context, host string, opts PruneOptions) ([]Backup, error)
}

// Exporter gets the disks of a backup out without restoring them: as
// image files, over NBD, as a FUSE mount (engine only: DigitalOcean backups
// cannot be downloaded).
//
// Each reads the backup in place, as an operation announced to gc before
// the backup is looked up, and checks every byte it hands out against the
// backup: a damaged chunk is an error (ErrCorrupt), never data.
type Exporter interface {
	// ExportBackup writes disks of a backup as images, to new files (each
	// takes its path only once complete) or to req.Stdout.
	ExportBackup(ctx context.Context, req ExportRequest) (*ExportResult, error)
	// ServeBackup serves disks of a backup, read-only, as NBD exports
	// named by the disks, on req.Listener, until ctx ends; it calls
	// req.Ready once they are served. It returns nil when ctx ended it,
	// and an error when it could not start, or stopped because it could no
	// longer read the backup safely (its protection from gc was lost).
	ServeBackup(ctx context.Context, req ServeRequest) error
	// MountBackup mounts disks of a backup, read-only, as files of a FUSE
	// file system on req.Dir, until ctx ends, then unmounts it; it calls
	// req.Ready once mounted. It returns as ServeBackup does; an error
	// wrapping ErrUnsupported when FUSE cannot be used here.
	MountBackup(ctx context.Context, req MountRequest) error
}

// Policies turns scheduled backups on and off and shows and changes their
// policy. Every context has it.
type Policies interface {
	// EnableBackups turns scheduled backups on. Nil fields of req take the
	// plan's defaults.
	EnableBackups(ctx context.Context, host string, req PolicyRequest) (*Action, error)
	// DisableBackups turns scheduled backups off. A host that has backups
	// needs opts.DeleteBackups (or, where the context can keep them,
	// opts.KeepBackups), else the error wraps ErrConfirm and nothing
	// changes.
	DisableBackups(ctx context.Context, host string, opts DisableOptions) (*Action, error)
	// SetPolicy changes the fields of a host's policy that req sets and
	// keeps the others.
	SetPolicy(ctx context.Context, host string, req PolicyRequest) (*Action, error)
	GetPolicy(ctx context.Context, host string) (*HostPolicy, error)
	// ListPolicies lists the hosts' policies; when some hosts cannot be
	// read it returns the others and an error naming them.
	ListPolicies(ctx context.Context) ([]HostPolicy, error)
	// SupportedPolicies lists the plans on offer, as the context describes
	// them (on DigitalOcean, the API's supported_policies).
	SupportedPolicies(ctx context.Context) ([]SupportedPolicy, error)
}

// BackupKeeper turns scheduled backups off and keeps the host's existing
// backups (engine only: DigitalOcean deletes a Droplet's backups when its
// backups are disabled).
type BackupKeeper interface {
	DisableKeepingBackups(ctx context.Context, host string) (*Action, error)
}

// TagPolicies turns scheduled backups on and off for every host that has a
// tag, in one request (DigitalOcean only).
type TagPolicies interface {
	// EnableBackupsByTag enables backups, with the default policy, of every
	// Droplet tagged tag, and returns one action per Droplet.
	EnableBackupsByTag(ctx context.Context, tag string) ([]Action, error)
	// DisableBackupsByTag disables backups of every Droplet tagged tag.
	// When any of them has backups, opts.DeleteBackups is needed, else the
	// error wraps ErrConfirm, says how many would be deleted, and nothing
	// changes.
	DisableBackupsByTag(ctx context.Context, tag string, opts DisableOptions) ([]Action, error)
}

// Snapshots lists and deletes snapshots and turns backups into them. Every
// context has it.
type Snapshots interface {
	// ConvertBackup turns a backup into a snapshot.
	ConvertBackup(ctx context.Context, id int) (*Action, error)
	// ListSnapshots lists the snapshots of one host, or every snapshot when
	// host is "" (on DigitalOcean, those of destroyed Droplets too), oldest
	// first.
	ListSnapshots(ctx context.Context, host string) ([]Backup, error)
	// DeleteSnapshot deletes one snapshot; a backup is refused with an error
	// wrapping ErrInvalid.
	DeleteSnapshot(ctx context.Context, id int) error
}

// SnapshotTaker takes an on-demand snapshot of a host (DigitalOcean only:
// the engine's on-demand backup is BackupTaker, and any backup becomes a
// snapshot with ConvertBackup).
type SnapshotTaker interface {
	// TakeSnapshot starts a snapshot of host named name ("" lets the
	// context name it) and returns its action, usually in progress.
	TakeSnapshot(ctx context.Context, host, name string) (*Action, error)
}

// Actions shows asynchronous operations. Every context has it.
type Actions interface {
	// GetAction returns an action. An errored action is data, not an error.
	GetAction(ctx context.Context, id int) (*Action, error)
	// ListActions lists every action, newest first. When some cannot be
	// read it returns the others and an error naming them.
	ListActions(ctx context.Context) ([]Action, error)
	// ListHostActions lists the actions on one host, newest first.
	ListHostActions(ctx context.Context, host string) ([]Action, error)
}

// ActionPager lists one page of the actions, reading only that page, where
// a context can (the engine: its action records are objects of their own).
type ActionPager interface {
	// ListActionsPage lists perPage actions from the page'th page (from
	// 1), newest first, and how many there are in all. When some of the
	// page cannot be read it returns the others and an error naming them.
	ListActionsPage(ctx context.Context, page, perPage int) ([]Action, int, error)
}

// Repository creates, describes and garbage-collects the engine's
// repository (engine only).
type Repository interface {
	InitRepo(ctx context.Context, opts RepoInitOptions) (*RepoStats, error)
	RepoStats(ctx context.Context) (*RepoStats, error)
	GC(ctx context.Context, opts GCOptions) (*GCResult, error)
}

// KeyManager manages the keys of an encrypted repository (engine only):
// each key opens the repository with its own password.
type KeyManager interface {
	// ListKeys lists the keys, and marks the one the password opened.
	ListKeys(ctx context.Context) ([]RepoKey, error)
	// AddKey adds a key that opens with password; kdf is Argon2id's
	// parameters ("t=3,m=64MiB,p=4"), "" for the default.
	AddKey(ctx context.Context, password []byte, kdf string) (*RepoKey, error)
	// RemoveKey removes a key; never the last, nor the one in use.
	RemoveKey(ctx context.Context, id string) error
	// ChangePassword replaces the key in use by one that opens with
	// password.
	ChangePassword(ctx context.Context, password []byte, kdf string) (*RepoKey, error)
}

// Upgrader rewrites a repository of an older format into the current one
// (engine only).
type Upgrader interface {
	UpgradeRepo(ctx context.Context, opts RepoUpgradeOptions) (*RepoUpgradeResult, error)
}

// Scheduler runs due backups, retention and gc itself (engine only:
// DigitalOcean runs its schedule on its own).
type Scheduler interface {
	RunDue(ctx context.Context, opts RunOptions) (*RunReport, error)
}

// Account checks the credentials of a context against its API
// (DigitalOcean only).
type Account interface {
	// CheckAccount makes one request that needs the token and returns the
	// account's e-mail address; a refused token wraps ErrAuth.
	CheckAccount(ctx context.Context) (string, error)
}

// Errorf formats an error that says only its message but matches sentinel
// with errors.Is, so a message reads "no host named x" rather than
// "not found: no host named x".
func Errorf(sentinel error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &sentinelError{err: err, sentinel: sentinel}
}

// sentinelError reads as err and matches both err (and what it wraps, as
// with %w) and sentinel.
type sentinelError struct {
	err      error
	sentinel error
}

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

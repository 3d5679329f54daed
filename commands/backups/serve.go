package backups

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ServeOptions are the inputs of `backups serve`.
type ServeOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Exporter, error)
	Printer  func() *output.Printer
	Env      func(string) string

	Host        string
	Backup      string // an ID or "latest"
	Disk        string
	Socket      string
	Listen      string
	AllowRemote bool
	CacheMiB    int
}

// NewCmdServe returns `backups serve`.
func NewCmdServe(f *cmdutil.Factory, runF func(*ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Exporter](f, "backups serve"), Printer: f.Printer, Env: f.Env}
	cmd := &cobra.Command{
		Use:   "serve <host> <id|latest>",
		Short: "Serve a backup's disks read-only over NBD",
		Long: `Serve the disks of a backup, read-only, over NBD (the Network Block Device
protocol), each as an export named after its disk, until Ctrl-C (SIGINT) or
SIGTERM. Nothing is restored: qemu-img, qemu-io, nbdinfo, nbdcopy, nbd-client
and QEMU itself read the backup in place, and a VM can boot from it at once
through a qcow2 overlay (see docs/export.md).

The server listens on a unix socket: --socket PATH, by default
$XDG_RUNTIME_DIR/dropback/<host>-<id|latest>.sock. Each export's URI is
printed on stderr once it is ready (and as JSON on stdout with -o json).
--listen HOST:PORT listens on TCP instead, on a loopback address only unless
--allow-remote says in so many words that anyone who can reach the address may
read the backup: NBD has no password, and dropback no TLS.

Clients see holes where the backup has zeros (NBD block status,
"base:allocation"), can read at once over several connections, and share a
cache of decompressed chunks (--cache-mib). Every byte served is checked
against the backup; a damaged chunk fails the read with EIO, never serves
other bytes.

The serve announces itself to gc for as long as it runs, so that nothing it
serves is deleted; should it fail to refresh that announcement for 5 minutes,
it stops with an error rather than serve a backup gc may delete.

Engine only: DigitalOcean backups cannot be downloaded.`,
		Example: `  # Serve the latest backup, then read it with qemu-img
  dropback backups serve web-1 latest --socket /tmp/web-1.sock &
  qemu-img info 'nbd+unix:///vda?socket=/tmp/web-1.sock'

  # Boot a VM from the backup at once: writes go to the overlay
  qemu-img create -f qcow2 -b 'nbd+unix:///vda?socket=/tmp/web-1.sock' -F raw overlay.qcow2

  # On TCP, for a client on this machine
  dropback backups serve web-1 42 --listen 127.0.0.1:10809`,
		Args: cmdutil.ExactArgs(2, "the host and the backup (ID or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host, opts.Backup = args[0], args[1]
			if err := validateBackupRef(opts.Backup); err != nil {
				return err
			}
			if err := cmdutil.MutuallyExclusive(cmd, "socket", "listen"); err != nil {
				return err
			}
			if err := cmdutil.Requires(cmd, "listen", "allow-remote"); err != nil {
				return err
			}
			if opts.CacheMiB < 0 {
				return cmdutil.FlagErrorf("invalid --cache-mib %d: must not be negative", opts.CacheMiB)
			}
			if runF != nil {
				return runF(opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Disk, "disk", "", "serve only this disk of the backup")
	fl.StringVar(&opts.Socket, "socket", "", "unix socket to listen on (default $XDG_RUNTIME_DIR/dropback/<host>-<backup>.sock)")
	fl.StringVar(&opts.Listen, "listen", "", "listen on TCP at HOST:PORT instead, e.g. 127.0.0.1:10809")
	fl.BoolVar(&opts.AllowRemote, "allow-remote", false, "let --listen take an address other hosts can reach (no password, no TLS)")
	fl.IntVar(&opts.CacheMiB, "cache-mib", 32, "MiB of decompressed chunks to keep for reads")
	return cmd
}

// validateBackupRef checks a backup argument: an ID or latest.
func validateBackupRef(ref string) error {
	if ref != "latest" {
		if _, err := strconv.Atoi(ref); err != nil {
			return cmdutil.FlagErrorf("invalid backup %q: give a backup ID or latest", cmdutil.Short(ref))
		}
	}
	return nil
}

// serveMemory is the soft limit on the Go heap of a serve, mount or
// export, so that one that runs for days under steady reads, or streams a
// disk through buffers it keeps replacing, stays small: garbage is
// collected before the heap grows past it (GOMEMLIMIT, if set, wins).
const serveMemory = 96 << 20

// limitMemory sets serveMemory as the soft memory limit unless GOMEMLIMIT
// sets one.
func limitMemory(env func(string) string) {
	if env("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemory)
	}
}

// cpuProfile starts a CPU profile into the file DROPBACK_CPUPROFILE names,
// if it names one, for benchmarks of serve and export (undocumented), and
// returns what stops it. A profile that cannot start is said on stderr and
// skipped: it never fails the command.
func cpuProfile(env func(string) string, pr *output.Printer) (stop func()) {
	path := env("DROPBACK_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		pr.Noticef("no CPU profile: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	pr := opts.Printer()
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	limitMemory(opts.Env)
	defer cpuProfile(opts.Env, pr)()
	what := fmt.Sprintf("serve backup %s of host %s", cmdutil.Short(opts.Backup), cmdutil.Short(opts.Host))
	ln, err := listenNBD(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer ln.Close()
	var printErr error
	err = p.ServeBackup(ctx, provider.ServeRequest{
		Host: opts.Host, Backup: opts.Backup, Disk: opts.Disk, Listener: ln.Listener,
		CacheBytes: int64(opts.CacheMiB) << 20,
		Logf:       func(format string, args ...any) { pr.Noticef("serve: "+format, args...) },
		Ready: func(s provider.ServedBackup) {
			for i, d := range s.Disks {
				s.Disks[i].URI = ln.uri(d.Name)
			}
			printErr = printServed(pr, opts.IO, s, "Serving", "until Ctrl-C or SIGTERM")
		},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	pr.Noticef("Stopped serving.")
	return printErr
}

// printServed says on stderr what is served, whatever the output flags,
// and prints it as JSON on stdout with -o json.
func printServed(pr *output.Printer, io *output.IOStreams, s provider.ServedBackup, verb, until string) error {
	for _, n := range s.Notices {
		pr.Noticef("%s", n)
	}
	fmt.Fprintf(io.ErrOut, "%s backup %d of host %s %s:\n", verb, s.BackupID, cmdutil.Short(s.HostName), until)
	for _, d := range s.Disks {
		where := d.URI
		if where == "" {
			where = d.Path
		}
		fmt.Fprintf(io.ErrOut, "  %s  %s (%s)\n", cmdutil.Short(d.Name), where, output.Bytes(d.SizeBytes))
	}
	if pr.JSON {
		return output.WriteJSON(io.Out, s)
	}
	return nil
}

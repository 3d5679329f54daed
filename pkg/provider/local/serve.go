package local

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dropback/dropback/pkg/export"
	"github.com/dropback/dropback/pkg/nbd"
	"github.com/dropback/dropback/pkg/provider"
)

// serveInFlight is how many requests of one connection are served at
// once: each holds a 1 MiB buffer, and the loads of chunks they wait for
// are few (engine.ReadOptions) whatever this is.
const serveInFlight = 8

// drainFor is how long a serve that stops waits for the requests in flight
// before it drops its clients.
const drainFor = 10 * time.Second

// serveNBD serves o's disks on req.Listener until ctx ends or o can no
// longer be read safely.
func serveNBD(ctx context.Context, o *openedBackup, req provider.ServeRequest) error {
	srv := nbd.NewServer(export.NBDExports(o.disks), nbd.ServerOptions{MaxInFlight: serveInFlight, Logf: req.Logf})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.WithoutCancel(ctx), req.Listener) }()
	if req.Ready != nil {
		req.Ready(o.served())
	}
	var err error
	select {
	case <-ctx.Done():
	case <-o.br.Done():
		err = o.br.Err()
	case err = <-served:
		served <- err
		err = fmt.Errorf("serve backup %d: %w", o.m.ID, err)
	}
	// Answer what is in flight (a reader that lost its protection fails
	// it), then close; a client that does not read its answers is dropped.
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainFor)
	defer cancel()
	_ = srv.Shutdown(stop)
	<-served
	if err == nil && ctx.Err() == nil {
		err = fmt.Errorf("serve backup %d: the reader ended", o.m.ID)
	}
	if err != nil {
		return fmt.Errorf("stopped serving backup %d: %w", o.m.ID, mapErr(err))
	}
	return nil
}

// mountFUSE mounts o's disks on req.Dir until ctx ends or o can no longer
// be read safely, then unmounts them, waiting for whatever uses the mount
// to let go.
func mountFUSE(ctx context.Context, o *openedBackup, req provider.MountRequest) error {
	mnt, err := export.MountDisks(req.Dir, o.disks, export.MountOptions{ModTime: o.m.CreatedAt, Logf: req.Logf})
	if errors.Is(err, export.ErrNoFUSE) {
		return provider.Errorf(provider.ErrUnsupported, "%v; install fuse3 (`apt-get install fuse3`) and load its module (`modprobe fuse`; in a container, pass it /dev/fuse and CAP_SYS_ADMIN), or read the backup without FUSE: serve it over NBD with `dropback backups serve %s %d`, or write it to a file with `dropback backups export %s %d --to FILE`",
			err, o.m.HostName, o.m.ID, o.m.HostName, o.m.ID)
	}
	if err != nil {
		return err
	}
	if req.Ready != nil {
		s := o.served()
		for i, f := range mnt.Files() {
			s.Disks[i].Path = filepath.Join(req.Dir, f)
		}
		req.Ready(s)
	}
	select {
	case <-ctx.Done():
	case <-o.br.Done():
		err = o.br.Err()
	}
	for told := false; ; told = true {
		uerr := mnt.Unmount()
		if uerr == nil {
			break
		}
		if !told && req.Logf != nil {
			req.Logf("%s is in use (%v): unmount what uses it (`umount` the loop mount, `losetup -d` its device, close its files); dropback unmounts it as soon as nothing does. Another Ctrl-C leaves it mounted but dead, for `fusermount3 -u %s`",
				req.Dir, uerr, req.Dir)
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return fmt.Errorf("stopped the mount of backup %d: %w", o.m.ID, mapErr(err))
	}
	return nil
}

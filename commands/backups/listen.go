package backups

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/provider"
)

// nbdListener is where `backups serve` listens, and how clients name it.
type nbdListener struct {
	net.Listener
	socket string // unix socket path, or "" for TCP
}

// uri is the NBD URI of export name on l.
func (l *nbdListener) uri(name string) string {
	u := url.URL{Path: "/" + name}
	if l.socket != "" {
		u.Scheme = "nbd+unix"
		u.RawQuery = "socket=" + (&url.URL{Path: l.socket}).EscapedPath()
		return u.String()
	}
	u.Scheme, u.Host = "nbd", l.Addr().String()
	return u.String()
}

// listenNBD opens the listener opts ask for: TCP at --listen (a loopback
// address unless --allow-remote), else the unix socket at --socket or its
// default path.
func listenNBD(opts *ServeOptions) (*nbdListener, error) {
	if opts.Listen != "" {
		if err := checkLoopback(opts.Listen, opts.AllowRemote); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cmdutil.Short(opts.Listen), err)
		}
		return &nbdListener{Listener: ln}, nil
	}
	path := opts.Socket
	if path == "" {
		var err error
		if path, err = defaultSocket(opts); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, provider.Errorf(provider.ErrInvalid, "--socket %s: %v", cmdutil.Short(path), err)
	}
	if err := clearStaleSocket(abs); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", abs)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cmdutil.Short(abs), err)
	}
	return &nbdListener{Listener: ln, socket: abs}, nil
}

// checkLoopback refuses an address that other hosts may reach, unless
// allowed: only loopback addresses are private to this machine.
func checkLoopback(addr string, allowed bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cmdutil.FlagErrorf("invalid --listen %s: give HOST:PORT, e.g. 127.0.0.1:10809", cmdutil.Short(addr))
	}
	if allowed {
		return nil
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if host != "" {
		if ips, err = net.LookupIP(host); err != nil {
			return cmdutil.FlagErrorf("--listen %s: %v", cmdutil.Short(addr), err)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			ips = nil
			break
		}
	}
	if len(ips) == 0 {
		return cmdutil.FlagErrorf("--listen %s would let other hosts read the backup (NBD has no password, and dropback no TLS): use a loopback address such as 127.0.0.1, or add --allow-remote to say that anyone who can reach it may read it",
			cmdutil.Short(addr))
	}
	return nil
}

// defaultSocket is $XDG_RUNTIME_DIR/dropback/<host>-<backup>.sock, or a
// directory of this user's under the temporary directory where
// XDG_RUNTIME_DIR is not set; the directory is made, private.
func defaultSocket(opts *ServeOptions) (string, error) {
	dir := opts.Env("XDG_RUNTIME_DIR")
	if dir != "" {
		dir = filepath.Join(dir, "dropback")
	} else {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("dropback-%d", os.Getuid()))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create the socket's directory: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
		return "", provider.Errorf(provider.ErrInvalid, "%s is not a directory of this user's: choose a socket with --socket", dir)
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, opts.Host+"-"+opts.Backup)
	return filepath.Join(dir, name+".sock"), nil
}

// clearStaleSocket removes a socket at path that no server listens on any
// more (a serve that was killed); one in use, or anything else at path, is
// refused.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", cmdutil.Short(path), err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return provider.Errorf(provider.ErrInvalid, "%s exists and is not a socket: choose another with --socket", cmdutil.Short(path))
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return provider.Errorf(provider.ErrExists, "%s is in use by another server: stop it, or choose another socket with --socket", cmdutil.Short(path))
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the stale socket %s: %w", cmdutil.Short(path), err)
	}
	return nil
}

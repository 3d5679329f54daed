package nbd

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// memImage returns the content of the test image in memory.
func memImage(size int64) []byte {
	data := make([]byte, size)
	for i, r := range testRegions(size) {
		for j := range r.length {
			if data[r.off+j] = r.pattern; r.pattern == 0 {
				data[r.off+j] = byte(j*7 + int64(i) + 1)
			}
		}
	}
	return data
}

// zeroMap is the base:allocation map memExport gives data.
func zeroMap(data []byte) []Extent {
	e := &memExport{data: data}
	exts, _ := e.Extents(context.Background(), 0, int64(len(data)))
	return holeMap(exts, StateHole|StateZero)
}

// dialTest connects to the test server over network with cfg.
func dialTest(t testing.TB, network, addr string, cfg clientConfig) *Client {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newClient(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTrip(t *testing.T) {
	data := memImage(testSize)
	other := []byte("a second, tiny export")
	for _, tc := range []struct {
		name       string
		network    string
		simpleOnly bool
		minBlock   uint32
	}{
		{"unix structured", "unix", false, 1},
		{"tcp structured", "tcp", false, 1},
		{"unix simple replies", "unix", true, 1},
		{"unix 4k minimum block", "unix", false, 4096},
		{"tcp simple replies 4k minimum block", "tcp", true, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewServer(map[string]Export{"disk": &memExport{data: data}, "": &memExport{data: other}},
				ServerOptions{Logf: logf(t)})
			srv.minBlock = tc.minBlock
			addr := listenTest(t, srv, tc.network)
			cfg := clientConfig{export: "disk", contexts: []string{ContextBaseAllocation}, simpleOnly: tc.simpleOnly}
			clients := []*Client{dialTest(t, tc.network, addr, cfg), dialTest(t, tc.network, addr, cfg)}
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Add(1)
				go func() { defer wg.Done(); checkReads(t, c, data) }()
			}
			wg.Wait()
			c := clients[0]
			if mb, _, _ := c.BlockSize(); mb != tc.minBlock {
				t.Errorf("minimum block %d, want %d", mb, tc.minBlock)
			}
			if tc.simpleOnly {
				if _, ok := c.MetaContext(ContextBaseAllocation); ok {
					t.Error("a metadata context was granted without structured replies")
				}
			} else if got, want := allocationMap(t, c, ContextBaseAllocation, StateHole|StateZero), zeroMap(data); !slices.Equal(got, want) {
				t.Errorf("base:allocation\n got %v\nwant %v", got, want)
			}
			def := dialTest(t, tc.network, addr, clientConfig{simpleOnly: tc.simpleOnly})
			p := make([]byte, len(other))
			if n, err := def.ReadAt(context.Background(), p, 0); err != nil || string(p[:n]) != string(other) {
				t.Errorf("default export: %q, %v", p[:n], err)
			}
		})
	}
}

// listenTest serves srv on a fresh unix socket or loopback TCP port.
func listenTest(t *testing.T, srv *Server, network string) string {
	t.Helper()
	if network == "unix" {
		return serve(t, srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestRoundTripUnknownExport(t *testing.T) {
	sock := serve(t, NewServer(map[string]Export{"disk": &memExport{data: make([]byte, 4096)}}, ServerOptions{}))
	_, err := Dial(context.Background(), "unix", sock, "nope")
	var oe *OptionError
	if !errors.Is(err, ErrUnknownExport) || !errors.As(err, &oe) || oe.Message == "" {
		t.Fatalf("dial unknown export: %v", err)
	}
}

// gateExport blocks every ReadAt until release is closed, and tells entered
// when one starts.
type gateExport struct {
	memExport
	entered chan struct{}
	release chan struct{}
}

func newGateExport(size int) *gateExport {
	data := make([]byte, size)
	for i := range data {
		data[i] = 0x11
	}
	return &gateExport{memExport: memExport{data: data}, entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (e *gateExport) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	e.entered <- struct{}{}
	<-e.release
	return e.memExport.ReadAt(ctx, p, off)
}

func TestClientReadCanceled(t *testing.T) {
	exp := newGateExport(1 << 20)
	sock := serve(t, NewServer(map[string]Export{"disk": exp}, ServerOptions{}))
	c := dialUnix(t, sock, "disk")
	ctx, cancel := context.WithCancel(context.Background())
	p := make([]byte, 8192)
	errc := make(chan error, 1)
	go func() { _, err := c.ReadAt(ctx, p, 0); errc <- err }()
	<-exp.entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled read: %v", err)
	}
	for i := range p {
		p[i] = 0xee
	}
	close(exp.release)
	// The reply to the abandoned read still arrives; once the client has
	// consumed it, p must be as the caller left it.
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 0 {
			break
		}
		runtime.Gosched()
	}
	for i, b := range p {
		if b != 0xee {
			t.Fatalf("byte %d of the buffer was written after the read returned", i)
		}
	}
	q := make([]byte, 4096)
	if _, err := c.ReadAt(context.Background(), q, 4096); err != nil || q[0] != 0x11 {
		t.Fatalf("read after a canceled one: %v", err)
	}
}

func TestServerCloseFinishesInFlight(t *testing.T) {
	exp := newGateExport(1 << 20)
	srv := NewServer(map[string]Export{"disk": exp}, ServerOptions{Logf: logf(t)})
	sock := socketPath(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	c := dialUnix(t, sock, "disk")
	p := make([]byte, 3<<20/2)
	type result struct {
		n   int
		err error
	}
	readc := make(chan result, 1)
	go func() { n, err := c.ReadAt(context.Background(), p[:1<<20], 0); readc <- result{n, err} }()
	<-exp.entered
	cancel() // shuts the server down, as Close does
	for {
		srv.mu.Lock()
		closing := srv.closing
		srv.mu.Unlock()
		if closing {
			break
		}
		runtime.Gosched()
	}
	close(exp.release)
	if r := <-readc; r.err != nil || r.n != 1<<20 || p[0] != 0x11 || p[1<<20-1] != 0x11 {
		t.Fatalf("read in flight at shutdown: n=%d err=%v", r.n, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := c.ReadAt(context.Background(), p[:4096], 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read after shutdown: %v", err)
	}
	if _, err := Dial(context.Background(), "unix", sock, "disk"); err == nil {
		t.Error("dial after shutdown succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestClientCloseIsIdempotent(t *testing.T) {
	sock := serve(t, NewServer(map[string]Export{"disk": &memExport{data: make([]byte, 4096)}}, ServerOptions{}))
	c, err := Dial(context.Background(), "unix", sock, "disk")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAt(context.Background(), make([]byte, 10), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if _, err := c.ReadAt(context.Background(), make([]byte, 10), 4096); err != io.EOF {
		t.Errorf("read at the end: %v", err)
	}
}

package nbd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// toolServer serves the sparse test image as "disk", and a small export
// "small", on a unix socket.
func toolServer(t *testing.T) (sock, path string, want []byte) {
	t.Helper()
	path, want = sparseImage(t, testSize, testRegions(testSize))
	srv := NewServer(map[string]Export{
		"disk":  openFileExport(t, path),
		"small": &memExport{data: []byte("small export")},
	}, ServerOptions{Logf: logf(t)})
	return serve(t, srv), path, want
}

func nbdURI(sock, export string) string { return "nbd+unix:///" + export + "?socket=" + sock }

func TestServerNbdinfoList(t *testing.T) {
	needTools(t, "nbdinfo")
	sock, _, _ := toolServer(t)
	var list struct {
		Structured bool `json:"structured"`
		Exports    []struct {
			Name     string   `json:"export-name"`
			Size     int64    `json:"export-size"`
			ReadOnly bool     `json:"is_read_only"`
			Contexts []string `json:"contexts"`
		} `json:"exports"`
	}
	out := run(t, "nbdinfo", "--list", "--json", "nbd+unix:///?socket="+sock)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := fmt.Sprintf("%+v", list)
	want := fmt.Sprintf("{Structured:true Exports:[{Name:disk Size:%d ReadOnly:true Contexts:[base:allocation]} "+
		"{Name:small Size:12 ReadOnly:true Contexts:[base:allocation]}]}", testSize)
	if got != want {
		t.Errorf("nbdinfo --list\n got %s\nwant %s", got, want)
	}
}

func TestServerNbdinfoMap(t *testing.T) {
	needTools(t, "nbdinfo")
	sock, _, _ := toolServer(t)
	out := run(t, "nbdinfo", "--map", nbdURI(sock, "disk"))
	var got []Extent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("nbdinfo --map line %q", line)
		}
		off, _ := strconv.ParseInt(f[0], 10, 64)
		n, _ := strconv.ParseInt(f[1], 10, 64)
		flags, _ := strconv.ParseUint(f[2], 10, 32)
		got = append(got, Extent{Offset: off, Length: n, Flags: uint32(flags)})
	}
	want := runsToMap(testSize, dataRuns(testSize, testRegions(testSize)), StateHole|StateZero)
	if got = holeMap(got, StateHole|StateZero); !slices.Equal(got, want) {
		t.Errorf("nbdinfo --map\n got %v\nwant %v", got, want)
	}
}

func TestServerQemuImg(t *testing.T) {
	needTools(t, "qemu-img")
	sock, path, want := toolServer(t)
	out := run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", path, nbdURI(sock, "disk"))
	if !strings.Contains(out, "Images are identical") {
		t.Errorf("qemu-img compare: %s", out)
	}
	converted := filepath.Join(t.TempDir(), "converted.raw")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", nbdURI(sock, "disk"), converted)
	if got, err := os.ReadFile(converted); err != nil || !bytes.Equal(got, want) {
		t.Errorf("qemu-img convert: %v, equal %v", err, bytes.Equal(got, want))
	}
	// The same over TCP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(map[string]Export{"disk": openFileExport(t, path)}, ServerOptions{Logf: logf(t)})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), ln) }()
	defer func() { srv.Close(); <-done }()
	out = run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", path, "nbd://"+ln.Addr().String()+"/disk")
	if !strings.Contains(out, "Images are identical") {
		t.Errorf("qemu-img compare over tcp: %s", out)
	}
}

func TestServerQemuIO(t *testing.T) {
	needTools(t, "qemu-io")
	sock, _, _ := toolServer(t)
	uri := nbdURI(sock, "disk")
	for _, tc := range []struct {
		cmds []string
		ok   bool
	}{
		{[]string{"read -P 0xab 1M 300k", "read -P 0 2M 1M", "read -P 0xab 1100k 4k", "read -P 0 12M 20M"}, true},
		{[]string{"read -P 0xcd 1M 4k"}, false}, // the check can fail
		{[]string{"write -P 0x1 0 4k"}, false},  // the export is flagged read-only
	} {
		args := []string{"-r", "-f", "raw"}
		if !tc.ok && strings.HasPrefix(tc.cmds[0], "write") {
			args = []string{"-f", "raw"} // open read-write: the server must refuse
		}
		for _, c := range tc.cmds {
			args = append(args, "-c", c)
		}
		out, err := exec.Command("qemu-io", append(args, uri)...).CombinedOutput()
		failed := err != nil || strings.Contains(string(out), "Pattern verification failed") ||
			strings.Contains(string(out), "Permission denied")
		if failed == tc.ok {
			t.Errorf("qemu-io %v: %s", tc.cmds, out)
		}
	}
}

func TestServerNbdcopyAndSeveralClients(t *testing.T) {
	needTools(t, "nbdcopy", "qemu-img")
	sock, path, want := toolServer(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cmd *exec.Cmd
			if i%2 == 0 {
				cmd = exec.Command("nbdcopy", nbdURI(sock, "disk"), filepath.Join(dir, fmt.Sprintf("copy%d.raw", i)))
			} else {
				cmd = exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", path, nbdURI(sock, "disk"))
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := 0; i < 6; i += 2 {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("copy%d.raw", i)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("nbdcopy %d: %v, equal %v", i, err, bytes.Equal(got, want))
		}
	}
}

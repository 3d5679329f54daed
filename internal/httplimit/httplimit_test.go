package httplimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/hostilehttp"
)

func client(t *Transport) *http.Client { return &http.Client{Transport: t} }

func get(t *testing.T, c *http.Client, ctx context.Context, url string) ([]byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{"", DefaultTimeout, false},
		{"2s", 2 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"30", 0, true},
		{"-1s", 0, true},
		{"0s", 0, true},
		{"\x1b[2J", 0, true},
	}
	for _, tc := range tests {
		got, err := Timeout(func(string) string { return tc.env })
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("Timeout(%q) = %v, %v", tc.env, got, err)
		}
		if err != nil && strings.Contains(err.Error(), "\x1b") {
			t.Errorf("error not escaped: %q", err)
		}
	}
	if d, err := Timeout(nil); err != nil || d != DefaultTimeout {
		t.Errorf("Timeout(nil) = %v, %v", d, err)
	}
}

func TestAServerThatNeverAnswersIsGivenUpOn(t *testing.T) {
	hung := hostilehttp.New(t)
	hung.On("", "", hostilehttp.Hang())
	for name, url := range map[string]string{
		"hung HTTP":  hung.URL + "/x?token=secret",
		"silent TCP": "http://" + hostilehttp.Silent(t) + "/x",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := get(t, client(&Transport{Timeout: 200 * time.Millisecond}), context.Background(), url)
			var te *TimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *TimeoutError", err)
			}
			if te.After != 200*time.Millisecond || te.Method != "GET" || strings.Contains(te.Error(), "secret") {
				t.Errorf("err = %v", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Error("a network timeout must not read as a --wait timeout (context.DeadlineExceeded)")
			}
		})
	}
}

func TestAnAnswerByteByByteIsGivenUpOn(t *testing.T) {
	slow := hostilehttp.New(t)
	slow.On("", "", hostilehttp.Slow(200, "text/plain", strings.Repeat("x", 1000), 20*time.Millisecond))
	data, err := get(t, client(&Transport{Timeout: 300 * time.Millisecond}), context.Background(), slow.URL)
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v after %d bytes, want a *TimeoutError", err, len(data))
	}
	if len(data) >= 1000 {
		t.Errorf("read the whole slow answer")
	}
}

func TestBytesMovedEarnTime(t *testing.T) {
	outer := NewDeadline(context.Background(), time.Second, "GET", "http://h/")
	defer outer.Stop()
	c := newClock(outer.Context(), time.Second, TimeoutError{})
	defer c.end()
	if c.allowed() != time.Second {
		t.Fatal(c.allowed())
	}
	c.add(10 * MinRate)
	if c.allowed() != 11*time.Second || outer.c.allowed() != RetryFactor*time.Second+10*time.Second {
		t.Fatal(c.allowed(), outer.c.allowed())
	}
	// An answer that takes far longer than the timeout but moves 64 KiB
	// every 20 ms (over 3 MB/s) is read whole.
	paced := hostilehttp.New(t)
	const blocks = 40
	paced.On("", "", func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		block := bytes.Repeat([]byte("p"), MinRate)
		for range blocks {
			if _, err := w.Write(block); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	data, err := get(t, client(&Transport{Timeout: 50 * time.Millisecond, MaxBody: -1}), context.Background(), paced.URL)
	if err != nil || len(data) != blocks*MinRate {
		t.Fatalf("read %d bytes: %v", len(data), err)
	}
}

func TestHugeAnswers(t *testing.T) {
	const gib = 1 << 30
	srv := hostilehttp.New(t)
	srv.On("", "/ok", hostilehttp.Huge(200, "application/json", `{"a":"`, 'a', 4*gib, false))
	srv.On("", "/chunked", hostilehttp.Huge(200, "application/json", `{"a":"`, 'a', 4*gib, true))
	srv.On("", "/error", hostilehttp.Huge(500, "text/plain", "", 'e', 4*gib, false))
	srv.On("", "/small", hostilehttp.Body(200, "text/plain", strings.Repeat("s", 2<<20)))
	c := client(&Transport{Timeout: time.Minute, MaxBody: 1 << 20})
	for _, path := range []string{"/ok", "/chunked"} {
		data, err := get(t, c, context.Background(), srv.URL+path)
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Limit != 1<<20 || !strings.Contains(err.Error(), "larger than 1 MiB") {
			t.Fatalf("%s: err = %v", path, err)
		}
		if len(data) > 1<<20 {
			t.Errorf("%s: read %d bytes past the limit", path, len(data))
		}
	}
	data, err := get(t, c, context.Background(), srv.URL+"/error")
	if err != nil || len(data) != MaxErrorBody {
		t.Fatalf("error body: read %d bytes: %v", len(data), err)
	}
	if srv.Sent() > 64<<20 {
		t.Errorf("the server wrote %d bytes: the client read on past the limit", srv.Sent())
	}
	_, err = get(t, c, WithMaxBody(context.Background(), 4<<20), srv.URL+"/small")
	if err != nil {
		t.Errorf("WithMaxBody(4 MiB): %v", err)
	}
	_, err = get(t, c, context.Background(), srv.URL+"/small")
	if !errors.As(err, new(*TooLargeError)) {
		t.Errorf("2 MiB past the 1 MiB limit: %v", err)
	}
}

func TestTheCallersCancellationIsNotATimeout(t *testing.T) {
	hung := hostilehttp.New(t)
	hung.On("", "", hostilehttp.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := get(t, client(&Transport{Timeout: time.Minute}), ctx, hung.URL)
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, new(*TimeoutError)) {
		t.Fatalf("err = %v, want the caller's context.DeadlineExceeded", err)
	}
}

func TestDeadline(t *testing.T) {
	x := NewDeadline(context.Background(), 50*time.Millisecond, "LIST", "http://u:p@h/b")
	defer x.Stop()
	<-x.Context().Done()
	err := x.Explain(x.Context().Err())
	var te *TimeoutError
	if !errors.As(err, &te) || te.PerAttempt != 50*time.Millisecond || strings.Contains(err.Error(), "u:p") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "no complete answer within 50ms per attempt, 200ms in all") {
		t.Errorf("err = %v", err)
	}

	parent, cancel := context.WithCancel(context.Background())
	y := NewDeadline(parent, time.Hour, "GET", "http://h/")
	y.Pause()
	y.Restart()
	cancel()
	if err := y.Explain(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled parent explains as %v", err)
	}
	y.Stop()
	if RetryBound(time.Second) != RetryFactor*time.Second || RetryBound(0) != RetryFactor*DefaultTimeout {
		t.Error(RetryBound(time.Second))
	}
}

package progress

import (
	"sync"
	"testing"
)

func TestCounterConcurrentAdds(t *testing.T) {
	const workers, adds = 8, 1000
	var c Counter
	c.Start("backup", 3*workers*adds)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // a renderer reading while the workers add
		defer close(readerDone)
		var last int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := c.Get()
			if s.Done() < last || s.Done() > s.Total {
				t.Errorf("reading went from %d to %d of %d", last, s.Done(), s.Total)
				return
			}
			last = s.Done()
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range adds {
				c.AddRead(2)
				c.AddSkipped(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	s := c.Get()
	want := Snapshot{Job: 1, Phase: "backup", Total: 3 * workers * adds, Read: 2 * workers * adds, Skipped: workers * adds}
	if s != want {
		t.Fatalf("Get() = %+v, want %+v", s, want)
	}
	if !s.Complete() {
		t.Fatal("a job with every byte done is not complete")
	}
}

func TestCounterJobs(t *testing.T) {
	var c Counter
	c.AddRead(5) // before any job: dropped
	if s := c.Get(); s != (Snapshot{}) || s.Complete() {
		t.Fatalf("before Start: %+v", s)
	}
	c.Start("backup", 10)
	c.AddRead(4)
	c.AddSkipped(6)
	if s := c.Get(); !s.Complete() || s.Job != 1 {
		t.Fatalf("first job: %+v", s)
	}
	if p := c.Previous(); p != (Snapshot{}) {
		t.Fatalf("Previous() during the first job = %+v", p)
	}
	c.Start("restore", 20)
	c.AddRead(1)
	s := c.Get()
	if want := (Snapshot{Job: 2, Phase: "restore", Total: 20, Read: 1}); s != want || s.Complete() {
		t.Fatalf("second job: %+v, want %+v", s, want)
	}
	if p, want := c.Previous(), (Snapshot{Job: 1, Phase: "backup", Total: 10, Read: 4, Skipped: 6}); p != want {
		t.Fatalf("Previous() = %+v, want %+v", p, want)
	}
}

func TestNilCounter(t *testing.T) {
	var c *Counter
	c.Start("verify", 1)
	c.AddRead(1)
	c.AddSkipped(1)
	if s, p := c.Get(), c.Previous(); s != (Snapshot{}) || p != (Snapshot{}) {
		t.Fatalf("nil counter reads %+v, %+v", s, p)
	}
}

func TestEmptyJobIsComplete(t *testing.T) {
	var c Counter
	c.Start("verify", 0)
	if !c.Get().Complete() {
		t.Fatal("a job of 0 bytes is not complete")
	}
}

// Package progress counts a long job's progress in bytes, so that the
// goroutines doing the work only add to atomic counters and one other
// goroutine, on a ticker, reads and shows them (the model of restic's
// internal/ui/progress). It knows nothing of terminals.
package progress

import "sync/atomic"

// Counter counts the bytes of the current job of an operation: a backup, a
// restore, a verify, or one after the other as a scheduling pass takes
// several backups.
//
// Every method is safe for concurrent use by any number of goroutines, costs
// an atomic operation or two, and does nothing on a nil *Counter, so code
// that shows no progress passes nil. A reader sees each field as it was at
// some moment during its call, not all fields at one moment: Read+Skipped may
// briefly lag what the workers have done, never run ahead of it.
//
// A job's bytes are either read or skipped. Read bytes are those the job had
// to read (from the disk for a backup, from the repository for a restore or a
// verify); they set the pace. Skipped bytes are accounted for without being
// read: holes of a sparse disk, zero chunks a restore needs no data for,
// chunks an in-place restore finds already in place. A job is complete when
// Read+Skipped reaches Total.
type Counter struct {
	job  atomic.Pointer[job]
	prev atomic.Pointer[job]
	jobs atomic.Uint64
}

type job struct {
	n             uint64
	phase         string
	total         int64
	read, skipped atomic.Int64
}

// Start begins a new job of total bytes, named by phase ("backup",
// "restore", "verify"). Start is called from one goroutine at a time, once
// the adds of the previous job have returned: later adds count towards the
// new job. Adds before the first Start are dropped.
func (c *Counter) Start(phase string, total int64) {
	if c == nil {
		return
	}
	c.prev.Store(c.job.Load())
	c.job.Store(&job{n: c.jobs.Add(1), phase: phase, total: total})
}

// AddRead counts n bytes the job read.
func (c *Counter) AddRead(n int64) {
	if c == nil {
		return
	}
	if j := c.job.Load(); j != nil {
		j.read.Add(n)
	}
}

// AddSkipped counts n bytes the job accounted for without reading them.
func (c *Counter) AddSkipped(n int64) {
	if c == nil {
		return
	}
	if j := c.job.Load(); j != nil {
		j.skipped.Add(n)
	}
}

// Snapshot is a reading of a Counter.
type Snapshot struct {
	// Job numbers the jobs of a Counter from 1; 0 means none has started.
	Job   uint64
	Phase string
	Total int64
	// Read and Skipped are the bytes read and skipped so far.
	Read, Skipped int64
}

// Get reads the current job's counts. A nil Counter, or one with no job yet,
// gives the zero Snapshot.
func (c *Counter) Get() Snapshot {
	if c == nil {
		return Snapshot{}
	}
	return c.job.Load().snapshot()
}

// Previous reads the job before the current one as it ended, so that a
// reader that last saw it unfinished can show how it ended. It gives the
// zero Snapshot before the second Start.
func (c *Counter) Previous() Snapshot {
	if c == nil {
		return Snapshot{}
	}
	return c.prev.Load().snapshot()
}

func (j *job) snapshot() Snapshot {
	if j == nil {
		return Snapshot{}
	}
	return Snapshot{Job: j.n, Phase: j.phase, Total: j.total, Read: j.read.Load(), Skipped: j.skipped.Load()}
}

// Done is the bytes finished, read or skipped.
func (s Snapshot) Done() int64 { return s.Read + s.Skipped }

// Complete reports whether a job has started and every byte of it is done.
func (s Snapshot) Complete() bool { return s.Job > 0 && s.Done() >= s.Total }

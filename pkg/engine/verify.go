package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/store"
)

// BackupVerdict is one backup's result of a verify.
type BackupVerdict struct {
	ID       int
	HostName string
	OK       bool
	Problem  string
}

// VerifyResult is what a verify found.
type VerifyResult struct {
	Backups  []BackupVerdict
	Chunks   int64
	Bytes    int64
	Problems []string
	// Notices are things the user should know that are no damage.
	Notices []string
}

// Damaged reports whether any backup or object is damaged.
func (v *VerifyResult) Damaged() bool {
	for _, b := range v.Backups {
		if !b.OK {
			return true
		}
	}
	return len(v.Problems) > 0
}

// Verify re-reads, decompresses and re-hashes every chunk the given backups
// use, or every chunk in the repository when ids is empty, and names the
// backups that a damaged or missing object affects. Damage is reported in the
// result; the error is for failing to run at all (or an unknown ID). prog, if
// not nil, counts the stored bytes of the chunks to check as a "verify" job:
// what is read as read, what a missing or unreadable pack holds as skipped.
//
// It runs as the verify operation ctx carries (WithOp), or announces one of
// its own, so that gc deletes nothing it reads; a notice says when it could
// not.
func (r *Repo) Verify(ctx context.Context, ids []int, prog *progress.Counter) (*VerifyResult, error) {
	op, end, notice, err := r.readerOp(ctx, OpVerify, 0)
	if err != nil {
		return nil, err
	}
	defer end()
	// Verify checks what the store holds: the cache is no witness.
	res, err := r.verify(withoutCache(op.Context()), ids, prog)
	if res != nil && notice != "" {
		res.Notices = append(res.Notices, notice)
	}
	return res, lostOr(op, err)
}

func (r *Repo) verify(ctx context.Context, ids []int, prog *progress.Counter) (*VerifyResult, error) {
	var manifests []*Manifest
	var extraProblems []string // of records that are not a backup's
	unreadable := map[int]error{}
	if len(ids) == 0 {
		all, damaged, err := r.readManifests(ctx)
		if err != nil {
			return nil, err
		}
		manifests, unreadable = all, damaged
		lost, rolledDamage, err := r.lostBackups(ctx)
		if err != nil {
			return nil, err
		}
		for _, err := range rolledDamage {
			extraProblems = append(extraProblems, err.Error())
		}
		for _, g := range lost {
			// A range is one verdict, under its first ID.
			unreadable[g.From] = lostError(g)
		}
	} else {
		for _, id := range ids {
			m, err := r.Manifest(ctx, id)
			if errors.Is(err, ErrCorrupt) {
				unreadable[id] = err
				continue
			}
			if err != nil {
				return nil, err
			}
			manifests = append(manifests, m)
		}
	}
	var extra []ID
	for _, m := range manifests {
		extra = append(extra, m.segmentIDs()...)
	}
	idx, segProblems, err := r.LoadIndex(ctx, extra...)
	if err != nil {
		return nil, err
	}
	defer idx.release()
	res := &VerifyResult{}
	for _, p := range segProblems {
		res.Problems = append(res.Problems, p.Error())
	}
	if len(ids) == 0 {
		hp, err := r.hostProblems(ctx, manifests)
		if err != nil {
			return nil, err
		}
		res.Problems = append(res.Problems, hp...)
		res.Problems = append(res.Problems, extraProblems...)
		cp, err := r.catalogProblems(ctx)
		if err != nil {
			return nil, err
		}
		res.Problems = append(res.Problems, cp...)
	}

	// The chunks the backups use, read one image at a time: memory follows
	// the unique chunks, not the backups times their disks. A backup whose
	// image index is unreadable is damaged outright.
	// The set of them is reserved from the memory budget as it grows,
	// after each image: past the budget, verify stops.
	verdicts := make([]BackupVerdict, len(manifests))
	wanted := map[ID]bool{}
	wantedMem, err := r.mem.reserve(0, "")
	if err != nil {
		return nil, err
	}
	defer wantedMem.release()
	var memErr error
	var mu sync.Mutex
	err = r.forEachImage(ctx, manifests, func(i int, im *Image, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			verdicts[i].OK, verdicts[i].Problem = false, err.Error()
			return
		}
		added := int64(0)
		for _, c := range im.Chunks {
			if !c.IsZero() && !wanted[c] {
				wanted[c] = true
				added++
			}
		}
		if memErr == nil {
			memErr = wantedMem.grow(added*setEntryMemory, fmt.Sprintf("the set of the chunks the backups use (%d chunks)", len(wanted)))
		}
	}, func(i int) {
		verdicts[i] = BackupVerdict{ID: manifests[i].ID, HostName: manifests[i].HostName, OK: true}
	})
	if err == nil {
		err = memErr
	}
	if err != nil {
		return nil, err
	}
	for i := range verdicts {
		if !verdicts[i].OK {
			res.Problems = append(res.Problems, fmt.Sprintf("backup %d: %s", verdicts[i].ID, verdicts[i].Problem))
		}
	}
	if len(ids) == 0 {
		// Every chunk stored, but not those only in packs gc condemned (a
		// sweep may have deleted them already) or in packs the listing did
		// not show (a segment written by a gc paused unawares may still
		// name a pack another gc deleted): a backup that needs one has it
		// in wanted already, and is checked.
		for c, l := range idx.chunks {
			p := idx.packs[l.pack]
			if !idx.condemned[p] && (idx.listedPacks == nil || idx.listed(p)) {
				wanted[c] = true
			}
		}
	}
	bad := r.checkChunks(ctx, idx, wanted, res, prog)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := r.noteDamage(ctx, idx, wanted, bad, len(ids) == 0); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	if len(segProblems) > 0 {
		// The backups were checked against the index as it was; now
		// rebuild it from the packs for what comes next.
		if msg, err := r.repairIndex(ctx, idx, extra); err != nil {
			res.Problems = append(res.Problems, err.Error())
		} else if msg != "" {
			res.Problems = append(res.Problems, msg)
		}
	}
	if len(bad) > 0 {
		// A second pass over the images counts each backup's damaged
		// chunks; a clean repository needs none.
		ok := make([]bool, len(verdicts))
		for i := range verdicts {
			ok[i] = verdicts[i].OK
		}
		counts := make([]int, len(manifests))
		problems := make([]error, len(manifests))
		err := r.forEachImage(ctx, manifests, func(i int, im *Image, err error) {
			if !ok[i] {
				return
			}
			if err != nil {
				problems[i] = err // readable a moment ago: say so, not that it is fine
				return
			}
			n := 0
			for _, c := range im.Chunks {
				if bad[c] {
					n++
				}
			}
			mu.Lock()
			counts[i] += n
			mu.Unlock()
		}, nil)
		if err != nil {
			return nil, err
		}
		for i, n := range counts {
			if ok[i] && problems[i] != nil {
				verdicts[i].OK, verdicts[i].Problem = false, problems[i].Error()
				res.Problems = append(res.Problems, fmt.Sprintf("backup %d: %v", verdicts[i].ID, problems[i]))
			} else if ok[i] && n > 0 {
				verdicts[i].OK = false
				verdicts[i].Problem = fmt.Sprintf("%d chunks damaged or missing", n)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		// A read cut short by the operation's end is no damage found.
		return nil, err
	}
	for id, err := range unreadable {
		verdicts = append(verdicts, BackupVerdict{ID: id, Problem: err.Error()})
		res.Problems = append(res.Problems, err.Error())
	}
	sort.Slice(verdicts, func(i, j int) bool { return verdicts[i].ID < verdicts[j].ID })
	sort.Strings(res.Problems)
	res.Backups = verdicts
	return res, nil
}

// checkChunks reads every pack holding a wanted chunk and returns the set of
// chunks that are missing, unreadable or do not match their hash.
func (r *Repo) checkChunks(ctx context.Context, idx *Index, wanted map[ID]bool, res *VerifyResult, prog *progress.Counter) map[ID]bool {
	bad := map[ID]bool{}
	byPack := map[uint32][]ID{}
	packBytes := map[uint32]int64{}
	var total int64
	for c := range wanted {
		l, ok := idx.chunks[c]
		if !ok {
			bad[c] = true
			continue
		}
		byPack[l.pack] = append(byPack[l.pack], c)
		packBytes[l.pack] += int64(l.length)
		total += int64(l.length)
	}
	if n := len(bad); n > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d chunks are missing from the index", n))
	}
	packs := make([]uint32, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i] < packs[j] })

	prog.Start("verify", total)
	var mu sync.Mutex
	jobs := make(chan uint32)
	var wg sync.WaitGroup
	for range max(4, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newChunkHasher(r.key)
			var buf []byte
			for p := range jobs {
				badHere, problem, n, size := r.checkPack(ctx, idx, idx.packs[p], byPack[p], h, &buf)
				mu.Lock()
				for _, c := range badHere {
					bad[c] = true
				}
				if problem != "" {
					res.Problems = append(res.Problems, problem)
				}
				res.Chunks += n
				res.Bytes += size
				mu.Unlock()
				prog.AddRead(size)
				prog.AddSkipped(packBytes[p] - size)
			}
		}()
	}
	for _, p := range packs {
		if ctx.Err() != nil {
			break
		}
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	return bad
}

// checkPack verifies the given chunks of one pack and returns those that are
// damaged, with a line describing the damage.
func (r *Repo) checkPack(ctx context.Context, idx *Index, pack ID, chunks []ID, h chunkHasher, buf *[]byte) (bad []ID, problem string, n, size int64) {
	name := packName(pack)
	info, err := r.st.Stat(ctx, name)
	if err != nil {
		what := "unreadable"
		if errors.Is(err, store.ErrNotFound) {
			what = "missing"
		}
		return chunks, fmt.Sprintf("pack %s is %s: %d chunks lost", pack, what, len(chunks)), 0, 0
	}
	var plain []byte
	r.readBlobs(ctx, idx, pack, chunks, buf, func(c ID, l location, blob []byte, err error) {
		n++
		size += int64(l.length)
		if err == nil {
			_, err = r.openBlob(blob, l, c, h, &plain)
		}
		if err != nil {
			bad = append(bad, c)
		}
	})
	if len(bad) > 0 {
		problem = fmt.Sprintf("pack %s: %d of %d chunks damaged", pack, len(bad), len(chunks))
	} else if _, err := r.packTrailer(ctx, name, info.Size, pack); err != nil {
		problem = fmt.Sprintf("pack %s: its trailer is damaged (its chunks are intact)", pack)
	}
	return bad, problem, n, size
}

// blobRead is the most that is read from a pack at once, so that memory
// stays small whatever the pack size.
const blobRead = 4 << 20

// readBlobs reads the blobs of the given chunks of one pack, in runs of
// neighbouring blobs of at most blobRead bytes, and calls fn for each in
// pack order with its bytes, or with the error that kept them from being
// read. The blob is only valid during the call. Runs are read into *buf,
// grown as needed, in whole aligned blocks so that a local pack can be read
// around the page cache.
func (r *Repo) readBlobs(ctx context.Context, idx *Index, pack ID, chunks []ID, buf *[]byte, fn func(c ID, l location, blob []byte, err error)) {
	chunks = slices.Clone(chunks)
	sort.Slice(chunks, func(i, j int) bool { return idx.chunks[chunks[i]].offset < idx.chunks[chunks[j]].offset })
	for i := 0; i < len(chunks); {
		first := idx.chunks[chunks[i]]
		start, end := int64(first.offset), int64(first.offset)+int64(first.length)
		j := i + 1
		for ; j < len(chunks); j++ {
			l := idx.chunks[chunks[j]]
			if int64(l.offset)+int64(l.length)-start > blobRead {
				break
			}
			end = max(end, int64(l.offset)+int64(l.length))
		}
		start = directio.RoundDown(start)
		need := directio.RoundUp(int(end - start))
		if cap(*buf) < need {
			*buf = directio.Alloc(max(need, blobRead+2*directio.Align))
		}
		n, err := store.ReadAt(ctx, r.st, packName(pack), (*buf)[:need], start)
		data := (*buf)[:n]
		for _, c := range chunks[i:j] {
			l := idx.chunks[c]
			lo, hi := int64(l.offset)-start, int64(l.offset)+int64(l.length)-start
			switch {
			case err != nil:
				fn(c, l, nil, err)
			case hi > int64(len(data)):
				fn(c, l, nil, fmt.Errorf("%w: pack %s is truncated", ErrCorrupt, pack))
			default:
				fn(c, l, data[lo:hi], nil)
			}
		}
		i = j
	}
}

// forEachImage reads the image indexes of the manifests' disks, several at
// once, and calls fn with each (or with the error that stopped the reading
// of a manifest's images: then only once for it, and no image of it
// after); first, when not nil, is called for each manifest before any fn
// of it. Only a canceled context stops it early.
func (r *Repo) forEachImage(ctx context.Context, ms []*Manifest, fn func(i int, im *Image, err error), first func(i int)) error {
	if first != nil {
		for i := range ms {
			first(i)
		}
	}
	return r.forEach(ctx, len(ms), func(ctx context.Context, i int) error {
		m := ms[i]
		imgs, err := m.Images()
		if err != nil {
			fn(i, nil, err)
			return nil
		}
		for j := range imgs {
			im, err := r.LoadDiskImage(ctx, m, j)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fn(i, nil, err)
				return nil
			}
			fn(i, im, nil)
			im.release()
		}
		return nil
	})
}

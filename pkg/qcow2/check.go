package qcow2

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// checker collects references to host clusters and the problems found.
type checker struct {
	im       *Image
	refs     map[int64]uint64 // host cluster -> references
	flagged  []flagged        // allocated L1/L2 entries and their COPIED bit
	blocks   []int64          // the refcount table
	problems []string
	count    int
}

type flagged struct {
	cluster int64
	copied  bool
	what    string
}

// Check verifies the image the way `qemu-img check` does for an image without
// snapshots: every cluster referenced by the header, the L1, L2 and refcount
// tables has a refcount equal to its number of references, every other
// cluster has a refcount of zero (no leaks), the COPIED flag of each L1 and L2
// entry is set exactly when its cluster's refcount is one, and the last
// referenced cluster lies inside the file. It returns nil, or an error
// wrapping ErrCorrupt that names the first problems, or ErrUnsupported. It
// holds one counter per referenced cluster, so it is meant for tests and
// verification, not for images of terabytes.
func (im *Image) Check() error {
	c := &checker{im: im, refs: map[int64]uint64{}}
	if err := c.walk(); err != nil {
		return err
	}
	if err := c.compareRefcounts(); err != nil {
		return err
	}
	for _, f := range c.flagged {
		if one := c.refs[f.cluster] == 1; one != f.copied {
			c.problem("%s: COPIED flag %v but refcount %d", f.what, f.copied, c.refs[f.cluster])
		}
	}
	c.checkEOF()
	if c.count > 0 {
		return fmt.Errorf("%w: %d problems: %s", ErrCorrupt, c.count, strings.Join(c.problems, "; "))
	}
	return nil
}

func (c *checker) problem(format string, args ...any) {
	c.count++
	if len(c.problems) < 10 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

func (c *checker) ref(off int64, what string) {
	cs := c.im.ClusterSize()
	if off%cs != 0 || off < 0 {
		c.problem("%s at unaligned offset %d", what, off)
		return
	}
	c.refs[off/cs]++
}

// readCluster reads the cluster at host offset off.
func (c *checker) readCluster(off int64, what string) ([]byte, error) {
	b := make([]byte, c.im.ClusterSize())
	if _, err := c.im.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read qcow2 %s at %d: %w", what, off, err)
	}
	return b, nil
}

// walk references the header, the tables and every cluster they point to.
func (c *checker) walk() error {
	h, cs := c.im.h, c.im.ClusterSize()
	c.ref(0, "header")
	for i := int64(0); i < (int64(h.L1Size)*8+cs-1)/cs; i++ {
		c.ref(h.L1TableOffset+i*cs, "L1 table")
	}
	for i := int64(0); i < int64(h.RefcountTableClusters); i++ {
		c.ref(h.RefcountTableOffset+i*cs, "refcount table")
	}
	blocks, err := c.refcountBlocks()
	if err != nil {
		return err
	}
	c.blocks = blocks
	for _, off := range blocks {
		if off != 0 {
			c.ref(off, "refcount block")
		}
	}
	for i, e := range c.im.l1 {
		if e&^copiedFlag == 0 {
			continue
		}
		if e&l1Reserved != 0 {
			c.problem("L1 entry %d has reserved bits: %#x", i, e)
			continue
		}
		off := int64(e & l2OffsetMask)
		c.ref(off, "L2 table")
		c.flagged = append(c.flagged, flagged{off / cs, e&copiedFlag != 0, fmt.Sprintf("L1 entry %d", i)})
		if err := c.walkL2(off); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) walkL2(off int64) error {
	table, err := c.readCluster(off, "L2 table")
	if err != nil {
		return err
	}
	cs := c.im.ClusterSize()
	for i := 0; i < len(table); i += 8 {
		e := binary.BigEndian.Uint64(table[i:])
		host := int64(e & l2OffsetMask)
		switch {
		case e&compressedFlag != 0:
			return fmt.Errorf("%w: compressed cluster in L2 table at %d", ErrUnsupported, off)
		case e&l2Reserved != 0:
			c.problem("L2 entry %d of table at %d has reserved bits: %#x", i/8, off, e)
		case host == 0:
			if e&copiedFlag != 0 {
				c.problem("L2 entry %d of table at %d: COPIED flag without a cluster", i/8, off)
			}
		default:
			c.ref(host, "data cluster")
			c.flagged = append(c.flagged, flagged{host / cs, e&copiedFlag != 0,
				fmt.Sprintf("L2 entry %d of table at %d", i/8, off)})
		}
	}
	return nil
}

// refcountBlocks returns the entries of the refcount table.
func (c *checker) refcountBlocks() ([]int64, error) {
	h, cs := c.im.h, c.im.ClusterSize()
	if int64(h.RefcountTableClusters)*cs > maxRefTabBytes {
		return nil, fmt.Errorf("%w: refcount table of %d clusters", ErrCorrupt, h.RefcountTableClusters)
	}
	raw := make([]byte, int64(h.RefcountTableClusters)*cs)
	if _, err := c.im.r.ReadAt(raw, h.RefcountTableOffset); err != nil {
		return nil, fmt.Errorf("read qcow2 refcount table at %d: %w", h.RefcountTableOffset, err)
	}
	blocks := make([]int64, len(raw)/8)
	for i := range blocks {
		e := binary.BigEndian.Uint64(raw[8*i:])
		if e&511 != 0 {
			c.problem("refcount table entry %d has reserved bits: %#x", i, e)
		}
		blocks[i] = int64(e &^ 511)
	}
	return blocks, nil
}

// compareRefcounts compares every refcount with the references counted.
func (c *checker) compareRefcounts() error {
	order := c.im.h.RefcountOrder
	perBlock := c.im.ClusterSize() * 8 >> order
	covered := map[int64]bool{}
	for j, off := range c.blocks {
		if off == 0 {
			continue
		}
		covered[int64(j)] = true
		block, err := c.readCluster(off, "refcount block")
		if err != nil {
			return err
		}
		for i := int64(0); i < perBlock; i++ {
			cl := int64(j)*perBlock + i
			if rc, want := refcountAt(block, i, order), c.refs[cl]; rc != want {
				c.problem("cluster %d: refcount %d, referenced %d times", cl, rc, want)
			}
		}
	}
	for cl := range c.refs {
		if !covered[cl/perBlock] {
			c.problem("cluster %d is referenced but has no refcount block", cl)
		}
	}
	return nil
}

// refcountAt reads entry i of a refcount block of 1<<order-bit entries.
func refcountAt(block []byte, i int64, order uint32) uint64 {
	width := int64(1) << order
	if width < 8 {
		b := block[i*width/8]
		return uint64(b>>(i*width%8)) & (1<<width - 1)
	}
	v := uint64(0)
	for _, x := range block[i*width/8 : (i+1)*width/8] {
		v = v<<8 | uint64(x)
	}
	return v
}

// checkEOF reads the first byte of the last referenced cluster.
func (c *checker) checkEOF() {
	last := int64(0)
	for cl := range c.refs {
		last = max(last, cl)
	}
	var b [1]byte
	if _, err := c.im.r.ReadAt(b[:], last*c.im.ClusterSize()); err != nil {
		c.problem("cluster %d is referenced but lies past the end of the file: %v", last, err)
	}
}

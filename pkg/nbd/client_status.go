package nbd

import (
	"context"
	"fmt"
)

// BlockStatus asks the server for the status of the bytes [off, off+length)
// in the metadata context ctxID (from MetaContext), with one
// NBD_CMD_BLOCK_STATUS request.
//
// The extents it returns are consecutive, start at off, and cover at least
// one byte and at most the range asked for (clipped to the export's size):
// a server may describe less than asked, and the caller asks again from the
// end of the last extent, as MapExtents does. Adjacent extents may share
// their flags.
func (c *Client) BlockStatus(ctx context.Context, off, length int64, ctxID uint32) ([]Extent, error) {
	granted := false
	for _, id := range c.s.contexts {
		granted = granted || id == ctxID
	}
	if !granted {
		return nil, fmt.Errorf("nbd block status: metadata context %d was not granted by the server", ctxID)
	}
	if off < 0 || length <= 0 || off >= c.s.size {
		return nil, fmt.Errorf("nbd block status of %d bytes at offset %d: outside the export of %d bytes", length, off, c.s.size)
	}
	end := off + min(length, c.s.size-off)
	mb := int64(c.s.minBlock)
	a := alignDown(off, mb)
	e := min(alignDown(end+mb-1, mb), c.s.size)
	n := min(e-a, alignDown(1<<32-1, mb))
	cl := &call{req: request{typ: cmdBlockStatus, off: uint64(a), length: uint32(n)}, ctxID: ctxID}
	if err := c.do(ctx, cl); err != nil {
		return nil, fmt.Errorf("nbd block status of %d bytes at offset %d: %w", n, a, err)
	}
	exts := clipExtents(cl.extents, off, end)
	if len(exts) == 0 {
		return nil, fmt.Errorf("nbd block status at offset %d: %w", off,
			protocolError("the server's extents end before the offset asked for"))
	}
	return exts, nil
}

// clipExtents cuts consecutive extents to [off, end).
func clipExtents(exts []Extent, off, end int64) []Extent {
	out := exts[:0]
	for _, e := range exts {
		if e.End() <= off {
			continue
		}
		if e.Offset >= end {
			break
		}
		if e.Offset < off {
			e.Length -= off - e.Offset
			e.Offset = off
		}
		if e.End() > end {
			e.Length = end - e.Offset
		}
		out = append(out, e)
	}
	return out
}

// MapExtents calls fn for the extents of [off, off+length) in the metadata
// context ctxID, in order, sending as many block status requests as the
// server needs. An error from fn stops it and is returned.
func (c *Client) MapExtents(ctx context.Context, off, length int64, ctxID uint32, fn func(Extent) error) error {
	end := off + min(length, c.s.size-off)
	for off < end {
		exts, err := c.BlockStatus(ctx, off, end-off, ctxID)
		if err != nil {
			return err
		}
		for _, e := range exts {
			if err := fn(e); err != nil {
				return err
			}
		}
		off = exts[len(exts)-1].End()
	}
	return nil
}

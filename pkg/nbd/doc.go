// Package nbd speaks the Network Block Device protocol: a client that reads
// an export and asks its block status, and a read-only server that exports
// disks to qemu-img, qemu-io, nbdinfo, nbdcopy or the kernel.
//
// Both sides use fixed newstyle negotiation with NBD_OPT_GO, structured
// replies when the peer offers them, and metadata contexts for
// NBD_CMD_BLOCK_STATUS: "base:allocation" (holes and zeroes) on both sides,
// and on the client any other context the server grants, such as QEMU's
// "qemu:dirty-bitmap:NAME". TLS, writes and the experimental extended headers
// are not implemented. docs/nbd.md lists what is implemented and refused.
//
// Peers are not trusted. Neither side allocates memory in proportion to a
// length the peer sent beyond the documented limits (MaxRead for data,
// 64 KiB for an option, 2^20 extents for a block status reply), and a peer
// that breaks the protocol gets an error, never a panic: the client fails
// with an error wrapping ErrProtocol and drops the connection; the server
// drops that one connection and keeps serving the others.
package nbd

// ContextBaseAllocation is the metadata context that reports, per extent,
// whether it is a hole (StateHole) and whether it reads as zeroes
// (StateZero).
const ContextBaseAllocation = "base:allocation"

// Flags of an extent in the "base:allocation" context.
const (
	StateHole uint32 = 1 << 0 // not allocated in the backing storage
	StateZero uint32 = 1 << 1 // reads as zeroes
)

// StateDirty flags a dirty extent in a "qemu:dirty-bitmap:NAME" context.
const StateDirty uint32 = 1 << 0

// DirtyBitmapContext names the metadata context through which QEMU exports
// the dirty bitmap bitmap ("qemu:dirty-bitmap:" + bitmap).
func DirtyBitmapContext(bitmap string) string { return "qemu:dirty-bitmap:" + bitmap }

// Extent is a run of bytes of an export that share one status. What Flags
// mean depends on the metadata context: StateHole and StateZero in
// "base:allocation", StateDirty in a dirty bitmap.
type Extent struct {
	Offset int64
	Length int64
	Flags  uint32
}

// End returns the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

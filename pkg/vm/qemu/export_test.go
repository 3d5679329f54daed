package qemu

// HoldScratch makes and locks the owner file of token in dir, as a backup
// does before it makes its scratch files, and returns what lets it go.
// A token already held gives a release that does nothing.
func HoldScratch(dir, token string) (release func()) {
	o, _ := holdScratch(dir, token)
	return o.release
}

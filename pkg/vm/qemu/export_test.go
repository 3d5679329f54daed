package qemu

// HoldScratch makes and locks the owner file of token in dir, as a backup
// does before it makes its scratch files, and returns what lets it go.
func HoldScratch(dir, token string) (release func()) { return holdScratch(dir, token).release }

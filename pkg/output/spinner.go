package output

import (
	"fmt"
	"os"
	"time"

	"github.com/briandowns/spinner"
)

// StartSpinner shows label with a spinner on stderr while something slow
// runs, and returns the function that removes it. It draws nothing unless
// stderr is a terminal, output is not JSON and -q is not set. When stderr is
// not a real file (tests), the label is printed once instead of animated.
func (p *Printer) StartSpinner(label string) (stop func()) {
	if !p.Interactive() {
		return func() {}
	}
	f, ok := p.IO.ErrOut.(*os.File)
	if !ok {
		fmt.Fprintf(p.IO.ErrOut, "%s...\n", label)
		return func() {}
	}
	s := spinner.New(spinner.CharSets[11], 120*time.Millisecond,
		spinner.WithWriterFile(f), spinner.WithSuffix(" "+label))
	s.Start()
	return s.Stop
}

// Noticef writes a notice line to stderr unless -q is set.
func (p *Printer) Noticef(format string, args ...any) {
	if p.Quiet {
		return
	}
	fmt.Fprintf(p.IO.ErrOut, format+"\n", args...)
}

// Command mkimage makes a synthetic virtual-machine disk image for the
// benchmarks, or ages one by a day of writes.
//
// The image is deterministic for a given size and seed, so several tools can
// be measured on the same bytes. It mixes what a real guest disk holds, one
// MiB at a time:
//
//	never-written space  35%  left as holes (the file is sparse)
//	zeroed blocks        10%  allocated, all zero bytes
//	text-like data       25%  compressible about 2x, never repeated
//	binary-like data     20%  compressible about 1.5x, never repeated
//	random data          10%  incompressible (media, archives, ciphertext)
//
// Usage:
//
//	mkimage create IMAGE [--size 1G] [--seed 1]
//	mkimage churn  IMAGE --day N [--percent 1] [--seed 1]
//	mkimage size   SIZE
//
// churn overwrites about PERCENT of the image in place the way a guest does:
// runs of 4 KiB to 1 MiB, most of them inside a hot tenth of the disk, some
// of them filling never-written space. Day N is deterministic too. size
// prints SIZE (such as 4G or 256MiB) in bytes.
//
// Its random numbers are CPython's (MT19937 as random.Random draws it), so
// the images are byte for byte those of the mkimage.py this was ported from.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage:
  mkimage create IMAGE [--size 1G] [--seed 1]
  mkimage churn  IMAGE --day N [--percent 1] [--seed 1]
  mkimage size   SIZE
`

// run runs one mkimage command line; an error wrapping errUsage has been
// reported on stderr already.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	fs := flag.NewFlagSet("mkimage "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	size := fs.String("size", "1G", "image size: bytes, or a number with K, M, G or T (powers of 1024)")
	seed := fs.Int64("seed", 1, "seed of the random data")
	day := fs.Int64("day", -1, "the day of writes to apply (churn)")
	percent := fs.Float64("percent", 1, "share of the image to overwrite, in percent (churn)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return usageError(err)
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "create":
		n, err := parseSize(*size)
		if err != nil {
			return err
		}
		return create(ctx, pos[0], n, *seed)
	case "churn":
		if *day < 0 {
			fmt.Fprintln(stderr, "mkimage churn: --day is required")
			return errUsage
		}
		return churn(ctx, pos[0], *day, *percent, *seed)
	case "size":
		n, err := parseSize(pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, n)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return errUsage
}

func usageError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, as mkimage.py's argparse allowed, and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

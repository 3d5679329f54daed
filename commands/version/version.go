// Package version holds `version`.
package version

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
)

// VersionOptions are the inputs of `version`.
type VersionOptions struct {
	IO      *output.IOStreams
	Printer func() *output.Printer

	Info Info
}

// Info is what `version` prints.
type Info struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Columns are the rows of version.
var Columns = []output.Column[Info]{
	{Key: "Version", Header: "Version", Value: func(i Info) string { return i.Version }},
	{Key: "Go", Header: "Go", Value: func(i Info) string { return i.GoVersion }},
	{Key: "Platform", Header: "Platform", Value: func(i Info) string { return i.Platform }},
}

// NewCmdVersion returns `version`.
func NewCmdVersion(f *cmdutil.Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IOStreams, Printer: f.Printer, Info: Info{
		Version:   f.AppVersion,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show dropback's version",
		Example: `  dropback version
  dropback version -o json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runVersion(opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(Columns))
	return cmd
}

func runVersion(opts *VersionOptions) error {
	return opts.Printer().Print(output.KeyValue(Columns, opts.Info))
}

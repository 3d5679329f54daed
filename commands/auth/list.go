package auth

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ListOptions are the inputs of `auth list`.
type ListOptions struct {
	IO      *output.IOStreams
	Config  func() (*config.File, error)
	Context func() (string, error)
	Printer func() *output.Printer
}

// ContextInfo is one context as `auth list` shows it. Tokens are never
// shown.
type ContextInfo struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Type    string `json:"type"`
}

// ContextColumns are the columns of auth list.
var ContextColumns = []output.Column[ContextInfo]{
	{Key: "Name", Header: "Name", Value: func(c ContextInfo) string { return safetext.Escape(c.Name) }},
	{Key: "Current", Header: "Current", Value: func(c ContextInfo) string {
		if c.Current {
			return "*"
		}
		return ""
	}},
	{Key: "Type", Header: "Type", Value: func(c ContextInfo) string { return c.Type }},
}

// NewCmdList returns `auth list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Config: f.Config, Context: f.Context, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List contexts",
		Long:    "List the contexts: local, and every context with a stored token. The current one is marked.",
		Example: `  dropback auth list
  dropback auth list -o json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runList(opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(ContextColumns))
	return cmd
}

func runList(opts *ListOptions) error {
	file, err := opts.Config()
	if err != nil {
		return err
	}
	current, err := opts.Context()
	if err != nil {
		return err
	}
	names := []string{provider.ContextLocal}
	for name := range file.AuthContexts {
		if name != provider.ContextLocal {
			names = append(names, name)
		}
	}
	sort.Strings(names[1:])
	infos := make([]ContextInfo, 0, len(names))
	for _, n := range names {
		typ := provider.ContextDigitalOcean
		if n == provider.ContextLocal {
			typ = "engine"
		}
		infos = append(infos, ContextInfo{Name: n, Current: n == current, Type: typ})
	}
	return opts.Printer().Print(output.List(ContextColumns, infos))
}

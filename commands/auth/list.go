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
	Doctl   func() (*config.DoctlFile, error)
	Context func() (string, error)
	Printer func() *output.Printer
}

// ContextInfo is one context as `auth list` shows it. Tokens are never
// shown.
type ContextInfo struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Type    string `json:"type"`
	// Source is where its token is: "dropback" or "doctl" (doctl's config
	// file), "" for local.
	Source string `json:"source,omitempty"`
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
	{Key: "Source", Header: "Source", Extra: true, Value: func(c ContextInfo) string { return output.OrNone(c.Source) }},
}

// NewCmdList returns `auth list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Config: f.Config, Doctl: f.Doctl, Context: f.Context, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List contexts",
		Long: `List the contexts: local, every context with a token in dropback's config file,
and those of doctl's config file (read, never written). The current one is
marked.`,
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
	sources := map[string]string{}
	for name := range file.AuthContexts {
		sources[config.Normalize(name)] = "dropback"
	}
	if d, err := opts.Doctl(); err == nil {
		if _, ok := sources[provider.ContextDigitalOcean]; !ok && d.TokenOf(provider.ContextDigitalOcean) != "" {
			sources[provider.ContextDigitalOcean] = "doctl"
		}
		for _, name := range d.Contexts() {
			if _, ok := sources[name]; !ok {
				sources[name] = "doctl"
			}
		}
	}
	delete(sources, provider.ContextLocal)
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	infos := []ContextInfo{{Name: provider.ContextLocal, Current: current == provider.ContextLocal, Type: "engine"}}
	for _, n := range names {
		infos = append(infos, ContextInfo{Name: n, Current: n == current, Type: provider.ContextDigitalOcean, Source: sources[n]})
	}
	return opts.Printer().Print(output.List(ContextColumns, infos))
}

package main

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/root"
	"github.com/dropback/dropback/pkg/output"
)

// Tree returns dropback's command tree as the docs describe it: flag
// defaults do not depend on the machine the generator runs on.
func Tree() *cobra.Command {
	ios, _, _, _ := output.Test()
	f := cmdutil.New("dev", ios, func(string) string { return "" }, nil)
	return root.NewCmdRoot(f)
}

// Pages renders one Markdown page per command, keyed by file name.
func Pages(rootCmd *cobra.Command) map[string]string {
	pages := map[string]string{}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if !documented(cmd) {
			return
		}
		pages[fileName(cmd)] = page(cmd)
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(rootCmd)
	return pages
}

func documented(cmd *cobra.Command) bool {
	return cmd.IsAvailableCommand() && !cmd.IsAdditionalHelpTopicCommand() && cmd.Name() != "help" ||
		!cmd.HasParent()
}

func fileName(cmd *cobra.Command) string {
	return strings.ReplaceAll(cmd.CommandPath(), " ", "_") + ".md"
}

func page(cmd *cobra.Command) string {
	cmd.InitDefaultHelpFlag()
	var b bytes.Buffer
	fmt.Fprintf(&b, "## %s\n\n%s\n\n", cmd.CommandPath(), cmd.Short)
	if cmd.Long != "" {
		fmt.Fprintf(&b, "### Synopsis\n\n%s\n\n", strings.TrimSpace(cmd.Long))
	}
	if cmd.Runnable() {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", cmd.UseLine())
	}
	if len(cmd.Aliases) > 0 {
		fmt.Fprintf(&b, "### Aliases\n\n%s\n\n", strings.Join(append([]string{cmd.Name()}, cmd.Aliases...), ", "))
	}
	if cmd.Example != "" {
		fmt.Fprintf(&b, "### Examples\n\n```\n%s\n```\n\n", strings.TrimRight(cmd.Example, "\n"))
	}
	if fl := cmd.NonInheritedFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(&b, "### Options\n\n```\n%s```\n\n", fl.FlagUsages())
	}
	if fl := cmd.InheritedFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(&b, "### Options inherited from parent commands\n\n```\n%s```\n\n", fl.FlagUsages())
	}
	b.WriteString(seeAlso(cmd))
	return b.String()
}

func seeAlso(cmd *cobra.Command) string {
	var links []string
	if p := cmd.Parent(); p != nil {
		links = append(links, link(p))
	}
	children := cmd.Commands()
	sort.Slice(children, func(i, j int) bool { return children[i].Name() < children[j].Name() })
	for _, c := range children {
		if documented(c) {
			links = append(links, link(c))
		}
	}
	if len(links) == 0 {
		return ""
	}
	return "### See also\n\n" + strings.Join(links, "\n") + "\n"
}

func link(cmd *cobra.Command) string {
	return fmt.Sprintf("* [%s](%s) - %s", cmd.CommandPath(), fileName(cmd), cmd.Short)
}

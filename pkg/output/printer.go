package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Output formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Printer prints Displayables as the global output flags ask.
type Printer struct {
	IO *IOStreams
	// JSON selects -o json.
	JSON bool
	// Format is the --format column keys; empty means the default columns.
	Format []string
	// NoHeader drops the table header.
	NoHeader bool
	// Template, when set, is a Go template (text/template) that each item
	// is printed through instead of a table, as doctl's --template.
	Template string
	// Quiet silences notices, spinners and progress bars.
	Quiet bool
}

// FormatError reports a --format key that names no column.
type FormatError struct {
	Key   string
	Valid []string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("unknown column %q in --format; valid columns: %s",
		e.Key, strings.Join(e.Valid, ", "))
}

// Print writes d to stdout: JSON with -o json, a table otherwise.
func (p *Printer) Print(d Displayable) error {
	if p.JSON {
		return WriteJSON(p.IO.Out, d.JSON())
	}
	if p.Template != "" {
		return writeTemplate(p.IO.Out, p.Template, d.Items())
	}
	infos := d.Columns()
	cols, err := SelectColumns(infos, p.Format)
	if err != nil {
		return err
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = infos[c].Header
	}
	rows := d.Rows(cols)
	if d.Vertical() {
		if p.NoHeader {
			// The labels are the header: the values alone, one a line.
			return writeVertical(p.IO.Out, nil, rows)
		}
		return writeVertical(p.IO.Out, headers, rows)
	}
	if p.NoHeader {
		headers = nil
	}
	return WriteTable(p.IO.Out, headers, rows)
}

// Check validates the --format keys against d's columns without printing,
// so that a command can refuse a bad --format before it changes anything.
func (p *Printer) Check(cols []ColumnInfo) error {
	if p.JSON {
		return nil
	}
	if p.Template != "" {
		_, err := parseTemplate(p.Template)
		return err
	}
	_, err := SelectColumns(cols, p.Format)
	return err
}

// SelectColumns returns the indexes of the columns --format names, in its
// order, or of the default columns when format is empty. Keys match without
// regard to case; an unknown key is a *FormatError.
func SelectColumns(cols []ColumnInfo, format []string) ([]int, error) {
	var idx []int
	if len(format) == 0 {
		for i, c := range cols {
			if !c.Extra {
				idx = append(idx, i)
			}
		}
		return idx, nil
	}
	for _, key := range format {
		key = strings.TrimSpace(key)
		if key == "" {
			continue
		}
		i := findColumn(cols, key)
		if i < 0 {
			valid := make([]string, len(cols))
			for j, c := range cols {
				valid[j] = c.Key
			}
			return nil, &FormatError{Key: key, Valid: valid}
		}
		idx = append(idx, i)
	}
	return idx, nil
}

func findColumn(cols []ColumnInfo, key string) int {
	for i, c := range cols {
		if strings.EqualFold(c.Key, key) {
			return i
		}
	}
	return -1
}

// WriteJSON writes v as JSON indented by two spaces, with a final newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable writes a borderless, left-aligned table, as doctl's text output
// looks. A nil headers slice prints no header line.
func WriteTable(w io.Writer, headers []string, rows [][]string) error {
	if len(headers) == 0 && len(rows) == 0 {
		return nil
	}
	var buf bytes.Buffer
	pad := tw.CellPadding{Global: tw.Padding{Left: "", Right: "    ", Overwrite: true}}
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders:  tw.BorderNone,
			Symbols:  tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{Separators: tw.SeparatorsNone, Lines: tw.LinesNone},
		})),
		tablewriter.WithConfig(tablewriter.Config{
			Header: tw.CellConfig{
				Formatting: tw.CellFormatting{AutoFormat: tw.Off, AutoWrap: tw.WrapNone},
				Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
				Padding:    pad,
			},
			Row: tw.CellConfig{
				Formatting: tw.CellFormatting{AutoWrap: tw.WrapNone},
				Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
				Padding:    pad,
			},
			Behavior: tw.Behavior{TrimSpace: tw.Off},
		}),
	)
	if len(headers) > 0 {
		t.Header(toAny(headers)...)
	}
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return fmt.Errorf("render table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	return writeTrimmed(w, buf.String())
}

// writeVertical writes one "header value" line per column, or the values
// alone when headers is nil.
func writeVertical(w io.Writer, headers []string, rows [][]string) error {
	var kv [][]string
	for _, r := range rows {
		for i, v := range r {
			if headers == nil {
				kv = append(kv, []string{v})
			} else {
				kv = append(kv, []string{headers[i], v})
			}
		}
	}
	return WriteTable(w, nil, kv)
}

func toAny(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

// writeTrimmed drops the padding tablewriter leaves at the end of lines.
func writeTrimmed(w io.Writer, s string) error {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

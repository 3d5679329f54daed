package output

import (
	"bytes"
	"fmt"
	"io"
	"text/template"
)

// TemplateError is a --template that does not parse, or that an item
// cannot be printed through (a field it does not have).
type TemplateError struct {
	Err  error
	Item int // the item, from 1, that could not be printed; 0 for a template that does not parse
}

func (e *TemplateError) Error() string {
	if e.Item > 0 {
		return fmt.Sprintf("--template cannot print item %d: %v (a field empty for it can be guarded, as in {{with .BackupPolicy}}{{.Plan}}{{end}})", e.Item, e.Err)
	}
	return "invalid --template: " + e.Err.Error()
}
func (e *TemplateError) Unwrap() error { return e.Err }

func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("--template").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, &TemplateError{Err: err}
	}
	return t, nil
}

// writeTemplate prints each item through the template, each followed by a
// newline unless its text ends with one. Nothing is written when an item
// fails.
func writeTemplate(w io.Writer, text string, items []any) error {
	t, err := parseTemplate(text)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for i, item := range items {
		start := buf.Len()
		if err := t.Execute(&buf, item); err != nil {
			return &TemplateError{Err: err, Item: i + 1}
		}
		if buf.Len() > start && buf.Bytes()[buf.Len()-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

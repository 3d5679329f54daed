package output

// Column is one column of a resource's text table. Key is the name --format
// takes (matched without regard to case), Header the text of the table header
// and Value renders one item's cell. An Extra column is shown only when
// --format names it. A Doctl column is one of doctl's, under doctl's key and
// header, so that a doctl user's --format works unchanged; it is extra.
type Column[T any] struct {
	Key    string
	Header string
	Value  func(T) string
	Extra  bool
	Doctl  bool
}

// Displayable is something a command prints: as a text table of columns, or
// as JSON.
type Displayable interface {
	// Columns describes every column, default and extra.
	Columns() []ColumnInfo
	// Rows returns the cells of every row for the columns at the given
	// indexes into Columns.
	Rows(cols []int) [][]string
	// JSON is the value encoded by -o json.
	JSON() any
	// Vertical reports whether the text form is one "header value" line per
	// column instead of a table.
	Vertical() bool
	// Items are the rows' items, one per row, for --template.
	Items() []any
}

// ColumnInfo is a column without its getter.
type ColumnInfo struct {
	Key    string
	Header string
	Extra  bool
	Doctl  bool
}

// List displays a list of items of one type. Its JSON is always an array,
// "[]" when empty.
func List[T any](cols []Column[T], items []T) Displayable {
	return &table[T]{cols: cols, items: items}
}

// One displays a single item. Its JSON is an object.
func One[T any](cols []Column[T], item T) Displayable {
	return &table[T]{cols: cols, items: []T{item}, one: true}
}

// KeyValue displays a single item as one "header value" line per column.
func KeyValue[T any](cols []Column[T], item T) Displayable {
	return &table[T]{cols: cols, items: []T{item}, one: true, vertical: true}
}

// WithJSON returns d with its JSON replaced by v, for results whose table
// shows only a part of what the JSON carries.
func WithJSON(d Displayable, v any) Displayable {
	return &withJSON{Displayable: d, v: v}
}

type withJSON struct {
	Displayable
	v any
}

func (w *withJSON) JSON() any { return w.v }

type table[T any] struct {
	cols     []Column[T]
	items    []T
	one      bool
	vertical bool
}

func (t *table[T]) Columns() []ColumnInfo { return Infos(t.cols) }

func (t *table[T]) Rows(cols []int) [][]string {
	rows := make([][]string, 0, len(t.items))
	for _, item := range t.items {
		row := make([]string, len(cols))
		for j, c := range cols {
			row[j] = t.cols[c].Value(item)
		}
		rows = append(rows, row)
	}
	return rows
}

func (t *table[T]) JSON() any {
	if t.one {
		return t.items[0]
	}
	if t.items == nil {
		return []T{}
	}
	return t.items
}

func (t *table[T]) Vertical() bool { return t.vertical }

func (t *table[T]) Items() []any {
	out := make([]any, len(t.items))
	for i, item := range t.items {
		out[i] = item
	}
	return out
}

// Infos describes columns without their getters, for Printer.Check.
func Infos[T any](cols []Column[T]) []ColumnInfo {
	info := make([]ColumnInfo, len(cols))
	for i, c := range cols {
		info[i] = ColumnInfo{Key: c.Key, Header: c.Header, Extra: c.Extra || c.Doctl, Doctl: c.Doctl}
	}
	return info
}

package output

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

type item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

var itemColumns = []Column[item]{
	{Key: "ID", Header: "ID", Value: func(i item) string { return string(rune('0' + i.ID)) }},
	{Key: "Name", Header: "Name", Value: func(i item) string { return i.Name }},
	{Key: "Upper", Header: "Upper Name", Extra: true, Value: func(i item) string { return strings.ToUpper(i.Name) }},
}

func render(t *testing.T, p *Printer, d Displayable) (string, error) {
	t.Helper()
	ios, _, out, _ := Test()
	p.IO = ios
	err := p.Print(d)
	return out.String(), err
}

func TestTableIsBorderlessAndLeftAligned(t *testing.T) {
	got, err := render(t, &Printer{}, List(itemColumns, []item{{1, "a"}, {2, "longer name"}}))
	if err != nil {
		t.Fatal(err)
	}
	want := "ID    Name\n1     a\n2     longer name\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestFormatSelectsColumnsAndExtras(t *testing.T) {
	got, _ := render(t, &Printer{Format: []string{"upper", "id"}, NoHeader: true}, List(itemColumns, []item{{1, "a"}}))
	if got != "A    1\n" {
		t.Fatalf("got %q", got)
	}
	_, err := render(t, &Printer{Format: []string{"Nope"}}, List(itemColumns, []item{{1, "a"}}))
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "ID, Name, Upper") {
		t.Fatalf("err = %v", err)
	}
	if err := (&Printer{Format: []string{"x"}, JSON: true}).Check(Infos(itemColumns)); err != nil {
		t.Fatalf("--format is not checked for JSON: %v", err)
	}
}

func TestJSON(t *testing.T) {
	got, _ := render(t, &Printer{JSON: true}, List[item](itemColumns, nil))
	if got != "[]\n" {
		t.Fatalf("empty list = %q", got)
	}
	got, _ = render(t, &Printer{JSON: true}, One(itemColumns, item{1, "a"}))
	if got != "{\n  \"id\": 1,\n  \"name\": \"a\"\n}\n" {
		t.Fatalf("object = %q", got)
	}
	got, _ = render(t, &Printer{JSON: true}, WithJSON(One(itemColumns, item{1, "a"}), map[string]int{"x": 1}))
	if got != "{\n  \"x\": 1\n}\n" {
		t.Fatalf("WithJSON = %q", got)
	}
}

func TestKeyValue(t *testing.T) {
	got, _ := render(t, &Printer{}, KeyValue(itemColumns, item{1, "a"}))
	if got != "ID      1\nName    a\n" {
		t.Fatalf("got %q", got)
	}
}

func TestBytes(t *testing.T) {
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 20 << 30: "20.0 GiB", 3 << 40: "3.0 TiB"}
	for n, want := range tests {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTime(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	if got := Time(time.Date(2024, 1, 2, 4, 5, 6, 0, loc)); got != "2024-01-02T03:05:06Z" {
		t.Errorf("Time = %s", got)
	}
	if Time(time.Time{}) != None || TimePtr(nil) != None {
		t.Error("zero time is not None")
	}
}

func TestConfirm(t *testing.T) {
	ios, in, _, errOut := Test()
	if _, err := ios.Confirm("Go?"); !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("err = %v, want ErrNoTerminal", err)
	}
	ios.SetTTY(true)
	in.WriteString("yes\nno\n")
	if ok, err := ios.Confirm("Go?"); !ok || err != nil {
		t.Fatalf("yes = %v, %v", ok, err)
	}
	if ok, _ := ios.Confirm("Go?"); ok {
		t.Fatal("no = yes")
	}
	if ok, err := ios.Confirm("Go?"); ok || err != nil {
		t.Fatalf("end of input = %v, %v", ok, err)
	}
	if !strings.Contains(errOut.String(), "Go? [y/N]: ") {
		t.Fatalf("prompt = %q", errOut.String())
	}
}

func TestSpinnerWithoutAFileIsOneLine(t *testing.T) {
	ios, _, out, errOut := Test()
	ios.SetStderrTTY(true)
	stop := (&Printer{IO: ios}).StartSpinner("Waiting")
	stop()
	if errOut.String() != "Waiting...\n" || out.Len() != 0 {
		t.Fatalf("stderr %q stdout %q", errOut.String(), out.String())
	}
}

func TestPromptGivesUpWhenInterrupted(t *testing.T) {
	ios := &IOStreams{In: blockingReader{}, Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	ios.SetTTY(true)
	done := make(chan struct{})
	ios.SetInterrupt(done)
	time.AfterFunc(10*time.Millisecond, func() { close(done) })
	if _, err := ios.Confirm("Go?"); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
}

type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

func TestTemplatePrintsEachItem(t *testing.T) {
	tests := []struct {
		name, tmpl string
		d          Displayable
		want       string
		bad        bool
	}{
		{"list", "{{.ID}}:{{.Name}}", List(itemColumns, []item{{1, "a"}, {2, "b"}}), "1:a\n2:b\n", false},
		{"one, own newline", "{{.Name}}\n", One(itemColumns, item{3, "c"}), "c\n", false},
		{"empty list", "{{.ID}}", List(itemColumns, []item{}), "", false},
		{"no such field", "{{.Nope}}", List(itemColumns, []item{{1, "a"}}), "", true},
		{"does not parse", "{{.ID", List(itemColumns, []item{{1, "a"}}), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(t, &Printer{Template: tt.tmpl}, tt.d)
			var te *TemplateError
			if tt.bad != errors.As(err, &te) {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	var te *TemplateError
	if err := (&Printer{Template: "{{"}).Check(Infos(itemColumns)); !errors.As(err, &te) {
		t.Fatalf("Check = %v", err)
	}
}

func TestDoctlColumnsAreExtra(t *testing.T) {
	cols := append(itemColumns, Column[item]{Key: "DoctlName", Header: "Doctl Name", Doctl: true, Value: func(i item) string { return i.Name }})
	got, _ := render(t, &Printer{}, List(cols, []item{{1, "a"}}))
	if got != "ID    Name\n1     a\n" {
		t.Fatalf("default columns = %q", got)
	}
	got, _ = render(t, &Printer{Format: []string{"doctlname"}}, List(cols, []item{{1, "a"}}))
	if got != "Doctl Name\na\n" {
		t.Fatalf("--format doctlname = %q", got)
	}
}

package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/provider"
)

// representative is an error for each exit code, as a command returns it.
var representative = map[int]error{
	ExitOK:          nil,
	ExitError:       errors.New("list hosts: connection refused"),
	ExitUsage:       FlagErrorf("invalid --hour 25"),
	ExitPartial:     fmt.Errorf("run due backups: %w", ErrPartial),
	ExitAuth:        fmt.Errorf("list hosts: %w", provider.ErrAuth),
	ExitTimeout:     fmt.Errorf("wait for action 7: %w", provider.ErrTimeout),
	ExitDeclined:    fmt.Errorf("restore in place: %w", provider.ErrConfirm),
	ExitDamaged:     fmt.Errorf("verify: 1 of 2 backups damaged: %w", provider.ErrCorrupt),
	ExitNoRepo:      provider.Errorf(provider.ErrNoRepo, "repository not initialised at /x"),
	ExitLocked:      provider.Errorf(provider.ErrLocked, "gc lease held by host a, PID 7"),
	ExitFormat:      provider.Errorf(provider.ErrFormat, "/x is not a dropback repository"),
	ExitPassword:    provider.Errorf(provider.ErrPassword, "wrong password: no key of the repository at /x opens with it"),
	ExitInUse:       provider.Errorf(provider.ErrInUse, "disk /x is open in a running QEMU"),
	ExitInterrupted: Interrupted(context.Canceled),
}

// sentinels are the provider's errors by name.
var sentinels = map[string]error{
	"ErrNotFound": provider.ErrNotFound, "ErrAmbiguous": provider.ErrAmbiguous,
	"ErrInvalid": provider.ErrInvalid, "ErrExists": provider.ErrExists,
	"ErrUnsupported": provider.ErrUnsupported, "ErrCorrupt": provider.ErrCorrupt,
	"ErrAuth": provider.ErrAuth, "ErrActionFailed": provider.ErrActionFailed,
	"ErrTimeout": provider.ErrTimeout, "ErrNoRepo": provider.ErrNoRepo,
	"ErrConfirm": provider.ErrConfirm, "ErrLocked": provider.ErrLocked,
	"ErrFormat": provider.ErrFormat, "ErrPassword": provider.ErrPassword,
	"ErrInUse": provider.ErrInUse,
}

// TestExitCodesDoc checks docs/exit-codes.md against the code: every row of
// its table names a constant of errors.go with that value, and a
// representative error of that kind exits with it; every Exit constant has
// a row; every provider sentinel is listed with the code it gives.
func TestExitCodesDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/exit-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	constants := exitConstants(t)
	rows := docTable(t, string(doc))
	if len(rows) < 10 {
		t.Fatalf("docs/exit-codes.md: only %d rows in the table", len(rows))
	}
	documented := map[string]bool{}
	for _, r := range rows {
		documented[r.name] = true
		value, ok := constants[r.name]
		if !ok {
			t.Errorf("docs/exit-codes.md: code %d names %s, which errors.go does not define", r.code, r.name)
			continue
		}
		if value != r.code {
			t.Errorf("docs/exit-codes.md: %s is %d, errors.go says %d", r.name, r.code, value)
		}
		rep, ok := representative[r.code]
		if !ok {
			t.Errorf("code %d has no representative error in this test: add one", r.code)
			continue
		}
		if got := ExitCode(rep); got != r.code {
			t.Errorf("ExitCode(%v) = %d, docs/exit-codes.md says %s is %d", rep, got, r.name, r.code)
		}
	}
	for name, value := range constants {
		if !documented[name] {
			t.Errorf("%s (%d) is not in the table of docs/exit-codes.md", name, value)
		}
	}

	listed := map[string]bool{}
	for name, code := range docSentinels(t, string(doc)) {
		listed[name] = true
		s, ok := sentinels[name]
		if !ok {
			t.Errorf("docs/exit-codes.md lists %s, which pkg/provider does not define", name)
			continue
		}
		if got := ExitCode(fmt.Errorf("x: %w", s)); got != code {
			t.Errorf("a provider error wrapping %s exits %d, docs/exit-codes.md says %d", name, got, code)
		}
	}
	for _, name := range providerSentinels(t) {
		if !listed[name] {
			t.Errorf("provider.%s is not listed in docs/exit-codes.md", name)
		}
		if _, ok := sentinels[name]; !ok {
			t.Errorf("provider.%s is missing from this test's sentinels", name)
		}
	}
}

type docRow struct {
	code int
	name string
}

// docTable reads the rows "| 7 | `ExitDamaged` | ..." of the table.
func docTable(t *testing.T, doc string) []docRow {
	t.Helper()
	row := regexp.MustCompile("^\\|\\s*(\\d+)\\s*\\|\\s*`(\\w+)`\\s*\\|")
	var rows []docRow
	for _, line := range strings.Split(doc, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		code, _ := strconv.Atoi(m[1])
		rows = append(rows, docRow{code, m[2]})
	}
	return rows
}

// docSentinels reads the list items "- `ErrA`, `ErrB` → 1".
func docSentinels(t *testing.T, doc string) map[string]int {
	t.Helper()
	item := regexp.MustCompile(`^- (.*) → (\d+)\s*$`)
	name := regexp.MustCompile("`(Err\\w+)`")
	out := map[string]int{}
	for _, line := range strings.Split(doc, "\n") {
		m := item.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		code, _ := strconv.Atoi(m[2])
		for _, n := range name.FindAllStringSubmatch(m[1], -1) {
			if _, dup := out[n[1]]; dup {
				t.Errorf("docs/exit-codes.md lists %s twice", n[1])
			}
			out[n[1]] = code
		}
	}
	if len(out) == 0 {
		t.Fatal("docs/exit-codes.md lists no provider errors")
	}
	return out
}

// exitConstants reads the Exit constants of errors.go and their values.
func exitConstants(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, spec := range constSpecs(t, "errors.go", token.CONST) {
		for i, n := range spec.Names {
			if !strings.HasPrefix(n.Name, "Exit") {
				continue
			}
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok {
				t.Fatalf("%s is not a literal", n.Name)
			}
			v, err := strconv.Atoi(lit.Value)
			if err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
			out[n.Name] = v
		}
	}
	return out
}

// providerSentinels lists the Err variables of pkg/provider.
func providerSentinels(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, spec := range constSpecs(t, "../../pkg/provider/provider.go", token.VAR) {
		for _, n := range spec.Names {
			if strings.HasPrefix(n.Name, "Err") {
				out = append(out, n.Name)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no sentinels found in pkg/provider/provider.go")
	}
	return out
}

func constSpecs(t *testing.T, path string, tok token.Token) []*ast.ValueSpec {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*ast.ValueSpec
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == tok {
			for _, s := range g.Specs {
				out = append(out, s.(*ast.ValueSpec))
			}
		}
	}
	return out
}

package typedcache_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The docs stay true by being excerpts: every ```go block of README.md and
// docs/*.md is a run of lines of a file that the build checks, a test file
// (its Examples run, or at least compile) or a program under examples/.
// A block that is deliberately not Go (a shell command, a tree, Python)
// says so with its fence's language; a fence without one is refused, so
// that no Go slips through unchecked.

// docBlock is a fenced code block of a Markdown file.
type docBlock struct {
	file  string // path of the Markdown file
	line  int    // line of the opening fence, from 1
	lang  string // the fence's language, "" when it has none
	lines []string
	intro string // the paragraph before the block
}

func (b docBlock) String() string {
	return fmt.Sprintf("%s:%d (```%s)\n%s", b.file, b.line, b.lang, strings.Join(b.lines, "\n"))
}

// markdownBlocks returns the fenced code blocks of the Markdown text.
func markdownBlocks(file string, text []byte) ([]docBlock, error) {
	var (
		blocks []docBlock
		cur    *docBlock
		fence  string
		para   []string // the last paragraph of prose read
		blank  bool     // a blank line followed it
	)
	for i, line := range strings.Split(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if !strings.HasPrefix(trimmed, "```") && !strings.HasPrefix(trimmed, "~~~") {
				switch {
				case trimmed == "":
					blank = true
				case blank:
					para, blank = []string{trimmed}, false
				default:
					para = append(para, trimmed)
				}
				continue
			}
			fence = trimmed[:3]
			for strings.HasPrefix(trimmed[len(fence):], fence[:1]) {
				fence += fence[:1]
			}
			info := strings.Fields(trimmed[len(fence):])
			cur = &docBlock{file: file, line: i + 1, intro: strings.Join(para, " ")}
			para, blank = nil, false
			if len(info) > 0 {
				cur.lang = info[0]
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.TrimLeft(trimmed, fence[:1]) == "" {
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		cur.lines = append(cur.lines, line)
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a code block that is never closed", file, cur.line)
	}
	return blocks, nil
}

// codeLines returns the non-blank lines of lines, without their
// indentation (and trailing spaces), with their line numbers from 1.
func codeLines(lines []string) (text []string, numbers []int) {
	for i, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			text = append(text, l)
			numbers = append(numbers, i+1)
		}
	}
	return text, numbers
}

// sourceFile is a Go file a doc block may be an excerpt of, or one of its
// functions.
type sourceFile struct {
	path    string
	lines   []string // codeLines of the file
	numbers []int
	funcs   map[string][][2]int // the first and last lines of each function, by name
}

// function returns the lines of src's functions named name, one
// sourceFile each.
func (src sourceFile) function(name string) []sourceFile {
	var out []sourceFile
	for _, r := range src.funcs[name] {
		f := sourceFile{path: src.path}
		for i, n := range src.numbers {
			if n >= r[0] && n <= r[1] {
				f.lines = append(f.lines, src.lines[i])
				f.numbers = append(f.numbers, n)
			}
		}
		out = append(out, f)
	}
	return out
}

// funcRanges returns the line ranges of the functions of a Go file.
func funcRanges(path string, data []byte) (map[string][][2]int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, data, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	out := map[string][][2]int{}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
			name := fn.Name.Name
			out[name] = append(out[name], [2]int{fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line})
		}
	}
	return out, nil
}

// namedExamples returns the Examples an intro names as the source of the
// block that follows it ("From `ExampleFunc` and `ExampleUpdate` in ..."),
// or nil when it names none.
func namedExamples(intro string) []string {
	_, after, ok := strings.Cut(intro, "From `Example")
	if !ok {
		return nil
	}
	after = "`Example" + after
	var names []string
	for {
		_, rest, ok := strings.Cut(after, "`Example")
		if !ok {
			return names
		}
		name, rest, ok := strings.Cut(rest, "`")
		if !ok {
			return names
		}
		names = append(names, "Example"+name)
		after = rest
	}
}

// excerptSources returns every *_test.go file of the repository (its
// modules included: otel/ has its own go.mod) and every Go file under
// examples/, but this file.
func excerptSources(root string) ([]sourceFile, error) {
	var out []sourceFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		inExamples := strings.HasPrefix(rel, "examples/") && strings.HasSuffix(name, ".go")
		if rel == "docs_test.go" || !(strings.HasSuffix(name, "_test.go") || inExamples) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text, numbers := codeLines(strings.Split(string(data), "\n"))
		funcs, err := funcRanges(rel, data)
		if err != nil {
			return err
		}
		out = append(out, sourceFile{path: rel, lines: text, numbers: numbers, funcs: funcs})
		return nil
	})
	return out, err
}

// findExcerpt reports where the block's code lines appear in the sources,
// in order and contiguous: the file and the line of the first. When they
// do not, it returns "" and a description of the closest run found.
func findExcerpt(block []string, sources []sourceFile) (at, closest string) {
	want, _ := codeLines(block)
	if len(want) == 0 {
		return "", "the block has no code"
	}
	best, bestFile, bestLine := 0, "", 0
	for _, src := range sources {
		for i := range src.lines {
			n := 0
			for n < len(want) && i+n < len(src.lines) && src.lines[i+n] == want[n] {
				n++
			}
			if n == len(want) {
				return fmt.Sprintf("%s:%d", src.path, src.numbers[i]), ""
			}
			if n > best {
				best, bestFile, bestLine = n, src.path, src.numbers[i]
			}
		}
	}
	if best == 0 {
		return "", fmt.Sprintf("no file has its first line %q", want[0])
	}
	return "", fmt.Sprintf("closest: %s:%d matches its first %d of %d lines, then has not %q",
		bestFile, bestLine, best, len(want), want[best])
}

// docFiles returns README.md and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, files...)
}

func TestDocCodeBlocks(t *testing.T) {
	sources, err := excerptSources(".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := markdownBlocks(file, text)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, b := range blocks {
			switch b.lang {
			case "":
				t.Errorf("%s:%d: a code block without a language: write ```go for Go (an excerpt of an Example), ```sh or ```text otherwise", b.file, b.line)
			case "go", "golang":
				checked++
				if _, closest := findExcerpt(b.lines, sources); closest != "" {
					t.Errorf("this block is not an excerpt of a test or example file (%s); copy it from an Example, or change the Example:\n%s", closest, b)
					continue
				}
				// A block introduced as "From `ExampleX`" is an
				// excerpt of ExampleX (of one of the Examples named).
				if names := namedExamples(b.intro); names != nil {
					var funcs []sourceFile
					for _, src := range sources {
						for _, n := range names {
							funcs = append(funcs, src.function(n)...)
						}
					}
					if at, _ := findExcerpt(b.lines, funcs); at == "" {
						at, _ = findExcerpt(b.lines, sources)
						t.Errorf("%s:%d: the text says the block is from %s, but it is from %s", b.file, b.line, strings.Join(names, " or "), at)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no ```go block found: the test reads the wrong files")
	}
}

// The checker itself: an excerpt passes, a changed, reordered or
// interrupted one fails.
func TestFindExcerpt(t *testing.T) {
	src := "package p\n\nfunc f() {\n\ta := 1\n\n\tb := 2\n\tc := a + b\n\t_ = c\n}\n"
	text, numbers := codeLines(strings.Split(src, "\n"))
	sources := []sourceFile{{path: "p_test.go", lines: text, numbers: numbers}}
	tests := []struct {
		name  string
		block string
		ok    bool
	}{
		{"excerpt", "a := 1\nb := 2", true},
		{"excerpt with its own indentation and blank lines", "    a := 1\n\n\n  b := 2\n    c := a + b", true},
		{"changed line", "a := 1\nb := 3", false},
		{"reordered", "b := 2\na := 1", false},
		{"not contiguous", "a := 1\nc := a + b", false},
		{"past the end", "_ = c\n}\nmore()", false},
		{"empty", "\n\n", false},
	}
	for _, tt := range tests {
		at, closest := findExcerpt(strings.Split(tt.block, "\n"), sources)
		if got := closest == ""; got != tt.ok {
			t.Errorf("%s: found = %v (%q, %q); want %v", tt.name, got, at, closest, tt.ok)
		}
	}
}

func TestNamedExamples(t *testing.T) {
	for intro, want := range map[string]string{
		"From `ExampleFunc` in [memo/example_test.go](x):":                 "ExampleFunc",
		"From `ExampleNewRedLock` and `ExampleUpdate` (x).":                "ExampleNewRedLock ExampleUpdate",
		"sets). From `ExampleGetOrComputeMulti`, the `multi_cached` form:": "ExampleGetOrComputeMulti",
		"Over Redis, only the store changes. From `Example` in":            "Example",
		"A block about `ExampleFunc`, not from it:":                        "",
	} {
		if got := strings.Join(namedExamples(intro), " "); got != want {
			t.Errorf("namedExamples(%q) = %q; want %q", intro, got, want)
		}
	}
}

func TestMarkdownBlocks(t *testing.T) {
	md := "# t\n\n```go\nx := 1\n```\n\n  ```sh\n  go test\n  ```\n\n````text\n```go\n````\n\n```\nbare\n```\n"
	blocks, err := markdownBlocks("t.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks {
		got = append(got, fmt.Sprintf("%d:%s:%s", b.line, b.lang, strings.Join(b.lines, "|")))
	}
	want := []string{"3:go:x := 1", "7:sh:  go test", "11:text:```go", "15::bare"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("blocks = %q; want %q", got, want)
	}
	if _, err := markdownBlocks("t.md", []byte("```go\nx := 1\n")); err == nil {
		t.Error("an unclosed block: no error")
	}
}

// The README's quick start is the body of the root Example, verbatim, so
// that what a reader copies compiles and runs as shown.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(readme, []byte("\n## Quick start\n"))
	if !ok {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	blocks, err := markdownBlocks("README.md", after)
	if err != nil || len(blocks) == 0 || blocks[0].lang != "go" {
		t.Fatalf("README.md: the quick start has no ```go block (%v)", err)
	}
	got := strings.Join(blocks[0].lines, "\n")

	fset := token.NewFileSet()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var body *ast.BlockStmt
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Example" && fn.Recv == nil {
			body = fn.Body
		}
	}
	if body == nil {
		t.Fatal("example_test.go has no func Example")
	}
	inner := src[fset.Position(body.Lbrace).Offset+1 : fset.Position(body.Rbrace).Offset]
	var lines []string
	for _, l := range strings.Split(strings.Trim(string(inner), "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	want := strings.Join(lines, "\n")
	if got != want {
		t.Errorf("README.md's quick start is not the body of Example in example_test.go.\nREADME:\n%s\n\nExample:\n%s", got, want)
	}
}

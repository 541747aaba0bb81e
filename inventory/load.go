package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in an inventory file, located by line and field.
type Error struct {
	File  string
	Line  int
	Field string // path such as customers[0].hosts[1].os_family
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadFile reads and validates the inventory at path.
func LoadFile(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(data, path)
}

// Parse validates an inventory held in memory; name is used in messages and
// to resolve relative *_file paths.
func Parse(data []byte, name string) (*Inventory, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(name, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "inventory is empty"}
	}
	idx := indexNode(&root)

	var inv Inventory
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&inv); err != nil {
		return nil, decodeError(name, idx, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Line: extra.Line, Msg: "more than one YAML document"}
	}
	inv.File = name

	v := &validator{file: name, idx: idx, dir: filepath.Dir(name)}
	inv.applyDefaults()
	v.inventory(&inv)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
		return nil, v.errs
	}
	inv.resolve()
	return &inv, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError rewrites a YAML syntax error as file:line: message.
func syntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: n, Msg: m[2]}
	}
	return &Error{File: name, Msg: msg}
}

var unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// decodeError turns the decoder's type errors into located Errors, naming
// the field at each line.
func decodeError(name string, idx *nodeIndex, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(name, err)
	}
	var errs Errors
	for _, s := range te.Errors {
		m := lineRE.FindStringSubmatch(s)
		if m == nil {
			errs = append(errs, &Error{File: name, Msg: s})
			continue
		}
		n, _ := strconv.Atoi(m[1])
		msg := m[2]
		if u := unknownFieldRE.FindStringSubmatch(msg); u != nil {
			errs = append(errs, &Error{File: name, Line: n, Field: idx.keyAt(n, u[1]), Msg: "unknown field"})
			continue
		}
		errs = append(errs, &Error{File: name, Line: n, Field: idx.valueAt(n), Msg: strings.TrimPrefix(msg, "cannot unmarshal ")})
	}
	return errs
}

// nodeIndex maps field paths to the lines that hold them.
type nodeIndex struct {
	lines map[string]int
	order []pathLine // in document order, for reverse look-ups
}

type pathLine struct {
	path  string
	key   string
	line  int
	isKey bool
}

func indexNode(root *yaml.Node) *nodeIndex {
	idx := &nodeIndex{lines: map[string]int{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				idx.lines[p] = k.Line
				idx.order = append(idx.order, pathLine{path: p, key: k.Value, line: k.Line, isKey: true})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				idx.lines[p] = c.Line
				idx.order = append(idx.order, pathLine{path: p, line: c.Line})
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return idx
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// line returns the line of path, or of its nearest ancestor that exists.
func (x *nodeIndex) line(path string) int {
	for p := path; p != ""; {
		if n, ok := x.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (x *nodeIndex) keyAt(line int, key string) string {
	for _, pl := range x.order {
		if pl.isKey && pl.line == line && pl.key == key {
			return pl.path
		}
	}
	return key
}

// valueAt names the innermost field that starts on a line.
func (x *nodeIndex) valueAt(line int) string {
	found := ""
	for _, pl := range x.order {
		if pl.line == line {
			found = pl.path
		}
	}
	return found
}

package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode decodes one YAML document into out, rejecting unknown fields, and
// returns the index of its fields' lines for later validation errors.
// what names the file's kind in messages ("inventory is empty").
func Decode(data []byte, name, what string, out any) (*Index, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(name, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: what + " is empty"}
	}
	idx := indexNode(&root)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return nil, decodeError(name, idx, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Line: extra.Line, Msg: "more than one YAML document"}
	}
	return idx, nil
}

var (
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// syntaxError rewrites a YAML syntax error as file:line: message.
func syntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: n, Msg: m[2]}
	}
	return &Error{File: name, Msg: msg}
}

// decodeError turns the decoder's type errors into located Errors, naming
// the field at each line.
func decodeError(name string, idx *Index, err error) error {
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

// Index maps field paths (customers[0].hosts[1].name) to their lines.
type Index struct {
	lines map[string]int
	order []pathLine // in document order, for reverse look-ups
}

type pathLine struct {
	path  string
	key   string
	line  int
	isKey bool
}

func indexNode(root *yaml.Node) *Index {
	idx := &Index{lines: map[string]int{}}
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

// Line returns the line of path, or of its nearest ancestor that exists.
func (x *Index) Line(path string) int {
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

func (x *Index) keyAt(line int, key string) string {
	for _, pl := range x.order {
		if pl.isKey && pl.line == line && pl.key == key {
			return pl.path
		}
	}
	return key
}

// valueAt names the innermost field that starts on a line.
func (x *Index) valueAt(line int) string {
	found := ""
	for _, pl := range x.order {
		if pl.line == line {
			found = pl.path
		}
	}
	return found
}

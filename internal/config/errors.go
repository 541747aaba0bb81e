// Package config is what the project's YAML files share: strict decoding,
// errors located by file, line and field, and secrets as a type. The
// inventory and the remediator's configuration are both read through it.
package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a file, located by line and field.
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

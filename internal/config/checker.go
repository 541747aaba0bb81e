package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Checker collects a file's validation errors, located through its Index.
type Checker struct {
	File string
	Dir  string // relative *_file paths are read from here
	// SkipSecretFiles leaves *_file secrets unread, their values zero: for
	// a reader that uses none of them.
	SkipSecretFiles bool
	idx             *Index
	errs            Errors
}

// NewChecker checks the file name, indexed by Decode.
func NewChecker(name string, idx *Index) *Checker {
	return &Checker{File: name, Dir: filepath.Dir(name), idx: idx}
}

// Fail records a problem with the field at path.
func (c *Checker) Fail(path, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.File, Line: c.idx.Line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// Err returns every problem in line order, or nil.
func (c *Checker) Err() error {
	if len(c.errs) == 0 {
		return nil
	}
	sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
	return c.errs
}

// Path makes a relative path relative to the file's folder.
func (c *Checker) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Secret resolves a value-or-file pair at path (e.g. mail.password, with
// mail.password_file beside it): at most one may be set, and one must be
// when required. A file is read now; its trailing newline is dropped.
func (c *Checker) Secret(path string, val Secret, file string, required bool) Secret {
	field := path[strings.LastIndex(path, ".")+1:]
	switch {
	case !val.IsZero() && file != "":
		c.Fail(path, "set %s or %s_file, not both", field, field)
	case val.IsZero() && file == "" && required:
		c.Fail(path, "%s or %s_file is required", field, field)
	case file != "" && c.SkipSecretFiles:
		return val
	case file != "":
		b, err := os.ReadFile(c.Path(file))
		if err != nil {
			// The path is not secret; the error from os names only it.
			c.Fail(path+"_file", "%v", err)
			return val
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			c.Fail(path+"_file", "file %s is empty", c.Path(file))
		}
		return NewSecret(s)
	}
	return val
}

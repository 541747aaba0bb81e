package config

import (
	"encoding/json"
	"fmt"
)

// redacted is what a secret prints as, wherever it is printed.
const redacted = "<secret>"

// Secret is a value that must never appear in logs, errors, metrics or
// status pages. Reveal is the only way to read it.
type Secret struct{ value string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the value, for the one place that needs it.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no value is set.
func (s Secret) IsZero() bool { return s.value == "" }

// Format prints the redacted form for every verb, %#v and %x included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return redacted }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Secret) UnmarshalYAML(unmarshal func(any) error) error {
	return unmarshal(&s.value)
}

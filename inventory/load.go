package inventory

import (
	"fmt"
	"os"

	"github.com/mamori-ops/mamori/internal/config"
)

// Error is one problem in an inventory file, located by line and field.
type Error = config.Error

// Errors is every problem found in one file, in line order.
type Errors = config.Errors

// Secret is a value that never appears in logs, errors, metrics or status
// pages; Reveal is the only way to read it.
type Secret = config.Secret

// NewSecret wraps a value.
func NewSecret(v string) Secret { return config.NewSecret(v) }

// Option changes how an inventory is loaded.
type Option func(*config.Checker)

// WithoutSecrets leaves the *_file secrets unread (their values zero): the
// exporter uses none, so a customer server's copy of the inventory needs
// none of the remediator's secret files, and the exporter's user no right
// to read them.
func WithoutSecrets() Option { return func(c *config.Checker) { c.SkipSecretFiles = true } }

// LoadFile reads and validates the inventory at path.
func LoadFile(path string, opts ...Option) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(data, path, opts...)
}

// Parse validates an inventory held in memory; name is used in messages and
// to resolve relative *_file paths.
func Parse(data []byte, name string, opts ...Option) (*Inventory, error) {
	var inv Inventory
	idx, err := config.Decode(data, name, "inventory", &inv)
	if err != nil {
		return nil, err
	}
	inv.File = name
	v := &validator{config.NewChecker(name, idx)}
	for _, o := range opts {
		o(v.Checker)
	}
	inv.applyDefaults()
	v.inventory(&inv)
	if err := v.Err(); err != nil {
		return nil, err
	}
	inv.resolve()
	return &inv, nil
}

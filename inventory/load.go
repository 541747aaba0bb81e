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
	var inv Inventory
	idx, err := config.Decode(data, name, "inventory", &inv)
	if err != nil {
		return nil, err
	}
	inv.File = name
	v := &validator{config.NewChecker(name, idx)}
	inv.applyDefaults()
	v.inventory(&inv)
	if err := v.Err(); err != nil {
		return nil, err
	}
	inv.resolve()
	return &inv, nil
}

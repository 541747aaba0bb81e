// Command generate writes every file derived from the runbook registry.
// Run it through `make generate` from the repository root.
package main

import (
	"fmt"
	"os"

	"github.com/mamori-ops/mamori/internal/generate"
)

func main() {
	wrote, err := generate.Write(".")
	for _, p := range wrote {
		fmt.Println("wrote", p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

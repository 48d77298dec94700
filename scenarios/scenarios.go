// Package scenarios holds the experiments Maxwell ships, one YAML file each
// (the format is package scenario's, documented in docs/SCENARIOS.md), so
// that `maxwell study` runs them by name with nothing installed. seed is
// the default: the seed's story.
package scenarios

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Default is the scenario `maxwell study` runs when none is named.
const Default = "seed"

// Names lists the shipped scenarios, sorted, the default first.
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case a == Default:
			return -1
		case b == Default:
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// Read returns a shipped scenario's file.
func Read(name string) ([]byte, error) {
	return files.ReadFile(path.Clean(name) + ".yaml")
}

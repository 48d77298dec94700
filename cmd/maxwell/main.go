// Command maxwell is a thermodynamic economy for autonomous agents on a Linux
// host: agents live in cells, buy CPU time at a price that follows the host's
// temperature, and die when they cannot pay.
package main

import (
	"fmt"
	"os"

	"github.com/maxwellhq/maxwell/internal/cell"
)

func main() {
	// A cell's first process and the cell guard are this binary re-executed;
	// they take over here and never return.
	cell.RunShimIfRequested()
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "maxwell:", err)
		os.Exit(1)
	}
}

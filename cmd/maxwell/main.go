// Command maxwell is a thermodynamic economy for autonomous agents on a Linux
// host: agents live in cells, buy CPU time at a price that follows the host's
// temperature, and die when they cannot pay.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "maxwell:", err)
		os.Exit(1)
	}
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
)

// socketFlag adds --socket, the daemon's control socket, to cmd.
func socketFlag(cmd *cobra.Command) *string {
	p := new(string)
	cmd.Flags().StringVar(p, "socket", api.DefaultSocket(), "the daemon's control socket")
	return p
}

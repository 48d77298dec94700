package main

import (
	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. Each subcommand lives in its own file
// and is added here.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "maxwell",
		Short:         "A thermodynamic economy for autonomous agents on a Linux host",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand()
	return root
}

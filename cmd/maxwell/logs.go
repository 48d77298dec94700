package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
)

// newLogsCmd builds `maxwell logs`.
func newLogsCmd(a *app) *cobra.Command {
	var (
		sock   *string
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME [-f]",
		Short: "Print a cell's standard output and error; -f follows them",
		Long: `Logs prints what a cell wrote to its standard output and error, oldest first:
the daemon keeps them in files rotated at cell_logs.max_bytes, the newest
cell_logs.keep of them (so a noisy cell cannot fill the disk). With -f it goes
on printing what the cell writes until interrupted.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCells(&sock),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signalContext(cmd)
			defer stop()
			if err := c.Logs(ctx, args[0], follow, cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("logs %s: %w", args[0], err)
			}
			return nil
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "go on printing what the cell writes")
	return cmd
}

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
)

// newKillCmd builds `maxwell kill`.
func newKillCmd(a *app) *cobra.Command {
	var sock *string
	cmd := &cobra.Command{
		Use:   "kill NAME…",
		Short: "Kill cells and close their wallets",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, name := range args {
				if err := c.Kill(cmd.Context(), name); err != nil {
					errs = append(errs, fmt.Errorf("kill %s: %w", name, err))
					if errors.Is(err, api.ErrNotRunning) {
						break
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "killed %s\n", name)
			}
			return errors.Join(errs...)
		},
	}
	sock = socketFlag(cmd)
	return cmd
}

package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/dash"
)

func newTopCmd(a *app) *cobra.Command {
	var (
		readOnly bool
		sock     *string
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch a running daemon's economy in the terminal, and act on its agents",
		Long: `Attach the terminal dashboard to a running ` + "`maxwell daemon`" + `: temperature against
setpoint, power, prices, this tick's auction, wallets and events. Keys: ? help,
sort by column, / filter, p pause, r resume, x kill, f fund, q quit.
--read-only disables every action.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Ping(cmd.Context()); err != nil {
				return err
			}
			return dash.Run(cmd.Context(), c, dash.Options{ReadOnly: readOnly, GoneLinger: 2 * time.Second})
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "disable pause, resume, kill and fund")
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/plot"
)

// newPlotCmd builds `maxwell plot`, which draws PNG charts of run
// directories.
func newPlotCmd(a *app) *cobra.Command {
	var (
		outDir string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "plot RUN_DIR...",
		Short: "Draw PNG charts of run directories",
		Long: `Plot draws, for each run directory, a chart of host temperature (with
the controller's setpoint) and power over time, of the reserve and clearing
prices where the run has a market.csv, and of the run's events: one lane per
kind (insolvency, wallet, fault, lifecycle), each a glyph with its count,
the important ones ruled across the charts above. It draws a chart of each
agent's CPU share and energy (and wallet balance where the run has a
wallets.csv), then one chart of cumulative useful work against cumulative
host energy for all the runs given, so that a baseline and a Maxwell run
compare. Money is shown as the joules of credits it is (1 credit = 1 µJ).

A figure that comes from a model is labelled "estimated" and its caption
names the model. It prints the files written, one a line.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, dirs []string) error {
			files, err := plot.Run(dirs, outDir)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Files []string `json:"files"`
				}{files})
			}
			for _, f := range files {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), f); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&outDir, "out", ".", "directory to write the PNG files into (created if needed)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the files written as JSON")
	return cmd
}

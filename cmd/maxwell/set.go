package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/units"
)

// newSetCmd builds `maxwell set`.
func newSetCmd(a *app) *cobra.Command {
	var (
		sock        *string
		bid, tap, c units.Credits
		unitsN      int
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--max-bid P] [--units N] [--tap R] [--cap C]",
		Short: "Change a running cell's standing bid or tap",
		Long: `Set changes a living cell's terms while it runs: its standing bid (--max-bid
credits per slot for --units slots, bid by the daemon every tick; --max-bid 0
removes it and the cell bids for itself) and its tap (--tap credits per second
while its balance is below --cap). A tap change is recorded in the ledger; each
change is an event.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCells(&sock),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.SetRequest
			fl := cmd.Flags()
			if fl.Changed("max-bid") {
				req.MaxBid = &bid
			}
			if fl.Changed("units") {
				req.Units = &unitsN
			}
			if fl.Changed("tap") {
				req.TapRate = &tap
			}
			if fl.Changed("cap") {
				req.TapCap = &c
			}
			if err := req.Validate(); err != nil {
				return err
			}
			cl, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.Set(cmd.Context(), args[0], req); err != nil {
				return fmt.Errorf("set %s: %w", args[0], err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Cell string         `json:"cell"`
					Set  api.SetRequest `json:"set"`
				}{args[0], req})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s\n", args[0])
			return nil
		},
	}
	sock = socketFlag(cmd)
	f := cmd.Flags()
	creditsVar(f, &bid, "max-bid", "standing bid in credits per slot (0: none, the cell bids for itself)")
	f.IntVar(&unitsN, "units", 1, "slots the standing bid asks for")
	creditsVar(f, &tap, "tap", "income in credits per second while the balance is below --cap")
	creditsVar(f, &c, "cap", "balance in credits at which the tap stops")
	f.BoolVar(&asJSON, "json", false, "print the cell and the terms changed as JSON")
	return cmd
}

// newHostCmd builds `maxwell host` and `maxwell host set`.
func newHostCmd(a *app) *cobra.Command {
	host := &cobra.Command{Use: "host", Short: "Change the host's limits while the daemon runs", Args: cobra.NoArgs}
	var (
		sock             *string
		setpoint, budget float64
		asJSON           bool
	)
	set := &cobra.Command{
		Use:   "set [--setpoint °C] [--power-budget W]",
		Short: "Change the temperature the price holds, or the host's power budget in watts",
		Long: `Host set changes the host's limits while the daemon runs: --setpoint, the
temperature the thermal price holds, and --power-budget, a budget in watts
priced the same way (0 removes it). The price follows whichever limit binds;
maxwell ps says which ("binding"). Each change is an event.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var req api.HostRequest
			if cmd.Flags().Changed("setpoint") {
				req.SetpointCelsius = &setpoint
			}
			if cmd.Flags().Changed("power-budget") {
				req.PowerBudgetWatts = &budget
			}
			if err := req.Validate(); err != nil {
				return err
			}
			cl, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.SetHost(cmd.Context(), req); err != nil {
				return fmt.Errorf("host set: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Set api.HostRequest `json:"set"`
				}{req})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "host set")
			return nil
		},
	}
	sock = socketFlag(set)
	set.Flags().Float64Var(&setpoint, "setpoint", 0, "the temperature the price holds, °C")
	set.Flags().Float64Var(&budget, "power-budget", 0, "the host's power budget in watts (0: none)")
	set.Flags().BoolVar(&asJSON, "json", false, "print the limits changed as JSON")
	host.AddCommand(set)
	return host
}

package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/units"
)

// newFundCmd builds `maxwell fund`.
func newFundCmd(a *app) *cobra.Command {
	var (
		sock   *string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "fund NAME CREDITS",
		Short: "Add credits to a cell's wallet",
		Long: `Fund adds CREDITS (a positive whole number; 1 credit = 1 µJ) to the wallet
of the cell NAME. A cell hibernating for want of money wakes up once its
balance is no longer negative.`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeCells(&sock),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("fund %s: credits %q: want a positive whole number", name, args[1])
			}
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Fund(cmd.Context(), name, units.Credits(n)); err != nil {
				return fmt.Errorf("fund %s: %w", name, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Cell    string `json:"cell"`
					Credits int64  `json:"credits"`
				}{name, n})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "funded %s with %d credits\n", name, n)
			return nil
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	// "fund NAME -5" reaches the flag parser as the flag -5.
	// pflag says "unknown shorthand flag: '5' in -5".
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		if _, arg, ok := strings.Cut(err.Error(), "' in "); ok {
			if n, perr := strconv.ParseInt(arg, 10, 64); perr == nil && n < 0 {
				return fmt.Errorf("fund: credits %s: want a positive whole number", arg)
			}
		}
		return err
	})
	return cmd
}

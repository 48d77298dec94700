package main

import (
	"slices"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/life"
)

// newPsCmd builds `maxwell ps`.
func newPsCmd(a *app) *cobra.Command {
	var all, asJSON bool
	var sock *string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the daemon's cells: state, wallet, spending, bids",
		Long: `Ps lists the cells of the running daemon, with the host's temperature and
the current prices above them. Money is in credits (1 credit = 1 µJ); a
figure marked ~ is a model's estimate, not a measurement. Dead cells are
listed only with --all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.State(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if !all {
					st.Cells = slices.DeleteFunc(st.Cells, func(c api.Cell) bool { return c.State == life.Dead })
				}
				st.Events, st.History = nil, nil
				return printJSON(cmd.OutOrStdout(), st)
			}
			return st.WriteTable(cmd.OutOrStdout(), all)
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "list dead cells too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cells as JSON")
	return cmd
}

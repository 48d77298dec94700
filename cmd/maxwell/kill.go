package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/life"
)

// newKillCmd builds `maxwell kill`.
func newKillCmd(a *app) *cobra.Command {
	return newActCmd("kill", "Kill cells and close their wallets", "killed", (*api.Client).Kill)
}

// newPauseCmd builds `maxwell pause`.
func newPauseCmd(a *app) *cobra.Command {
	return newActCmd("pause", "Hold cells frozen: they bid nothing and pay nothing until resumed", "paused", (*api.Client).Pause)
}

// newResumeCmd builds `maxwell resume`.
func newResumeCmd(a *app) *cobra.Command {
	return newActCmd("resume", "Let paused cells bid again: each runs when it wins a slot", "resumed", (*api.Client).Resume)
}

// newActCmd builds a command that does one thing to each named cell,
// going on past cells that refuse and stopping if the daemon is gone.
func newActCmd(verb, short, done string, call func(*api.Client, context.Context, string) error) *cobra.Command {
	var (
		sock   *string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:               verb + " NAME…",
		Short:             short,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeCells(&sock),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			type result struct {
				Cell  string `json:"cell"`
				Done  bool   `json:"done"`
				Error string `json:"error,omitempty"`
			}
			var out []result
			var errs []error
			for _, name := range args {
				if err := call(c, cmd.Context(), name); err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", verb, name, err))
					out = append(out, result{Cell: name, Error: err.Error()})
					if errors.Is(err, api.ErrNotRunning) {
						break
					}
					continue
				}
				out = append(out, result{Cell: name, Done: true})
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, name)
				}
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what happened to each cell as JSON")
	return cmd
}

// completeCells completes the names of the daemon's living cells.
func completeCells(sock **string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		c, err := api.Dial(**sock)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		st, err := c.State(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, cl := range st.Cells {
			if cl.State != life.Dead {
				names = append(names, cl.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

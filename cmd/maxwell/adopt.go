package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
)

const adoptLong = `Adopt puts a cgroup that someone else made — a systemd service, a
container, a Kubernetes pod — under the running daemon's economy, as a cell.
Maxwell starts nothing in it and kills nothing in it: it freezes it until it
wins CPU slots, limits its CPU to what it won, measures its CPU time and
memory, meters the memory it frees (Landauer's tax, by its cgroup id), and
knows its processes on the agent socket by their PIDs.

The daemon must have been started with --adopt, and only root may adopt.
--cgroup is the path as /proc/PID/cgroup lists it. The cell gets a wallet of
--wallet credits (1 credit = 1 µJ); with --max-bid P the daemon bids P
credits per slot for --units slots on its behalf every tick, else its
processes bid for themselves through the agent socket.

When the wallet runs dry, --on-insolvency says what happens:
  freeze  the cgroup stays frozen until ` + "`maxwell fund`" + ` pays (the default)
  stop    the daemon lets go of it (thawed, its CPU limit back, its wallet
          closed) and asks its owner to stop it by running the command given
          after --, once, as itself

` + "`maxwell kill`" + ` on an adopted cell does the same as stop: it never kills a process.

  maxwell adopt --cgroup /system.slice/batch.service --wallet 50000000 --max-bid 2000
  maxwell adopt --cgroup /system.slice/batch.service --wallet 50000000 --max-bid 2000 \
      --on-insolvency stop -- systemctl stop batch.service`

// newAdoptCmd builds `maxwell adopt`.
func newAdoptCmd(a *app) *cobra.Command {
	var (
		req    api.AdoptRequest
		policy string
		asJSON bool
		sock   *string
	)
	cmd := &cobra.Command{
		Use:   "adopt --cgroup PATH --wallet N [flags] [-- STOP-COMMAND…]",
		Short: "Put an existing cgroup under the daemon's economy as a cell",
		Long:  adoptLong,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.OnInsolvency = api.Insolvency(policy)
			req.StopArgv = args
			if len(args) > 0 && req.OnInsolvency != api.InsolvencyStop {
				return fmt.Errorf("adopt: a stop command (%q) is only for --on-insolvency stop", args)
			}
			if err := req.Validate(); err != nil {
				return fmt.Errorf("adopt: %w", err)
			}
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			info, err := c.Adopt(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("adopt %s: %w", req.Cgroup, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "adopted %s as cell %s (pid %d, %s)\n", req.Cgroup, info.Name, info.PID, info.Backend)
			return nil
		},
	}
	f := cmd.Flags()
	sock = socketFlag(cmd)
	f.StringVar(&req.Cgroup, "cgroup", "", "the cgroup, as /proc/PID/cgroup lists it")
	f.StringVar(&req.Name, "name", "", "cell name (default: the cgroup's last path element)")
	creditsVar(f, &req.Wallet, "wallet", "endowment in credits (1 credit = 1 µJ)")
	creditsVar(f, &req.TapRate, "tap", "income in credits per second while the balance is below --tap-cap")
	creditsVar(f, &req.TapCap, "tap-cap", "balance in credits at which the tap stops (default: the wallet)")
	creditsVar(f, &req.MaxBid, "max-bid", "standing bid in credits per slot (default: its processes bid themselves)")
	f.IntVar(&req.Units, "units", 0, "slots the standing bid asks for (default 1)")
	f.StringVar(&policy, "on-insolvency", string(api.InsolvencyFreeze), "freeze or stop (see above)")
	f.BoolVar(&asJSON, "json", false, "print the new cell as JSON")
	cmd.MarkFlagRequired("cgroup")
	cmd.MarkFlagRequired("wallet")
	return cmd
}

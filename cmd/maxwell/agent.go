package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/workload"
)

const agentLong = `Run one of the built-in workloads as a Maxwell agent.

The agent reports its counters to the host over the Unix socket named by
--socket, or else by $MAXWELL_AGENT_SOCKET (see docs/PROTOCOL.md). With
neither, it runs standalone and prints its counters to stdout as one JSON
object per line at each report interval.

If the host refuses the agent, or the connection fails or is closed, the
agent logs the reason to stderr and exits with a non-zero status: an agent
that cannot be observed stops rather than burn CPU unmeasured. A single
report the host rejects without closing the connection is logged, and the
agent carries on. SIGINT or SIGTERM stops the agent after a last report,
with status 0.

With --bidding (which needs a host that runs the CPU-time auction) the
agent also bids at every tick for --units slots, one CPU each (default: its
thread count), as its strategy says.`

// agentFlags are the flags every agent subcommand has.
type agentFlags struct {
	workload.AgentOptions
	socket  string
	bidding bool
}

func (f *agentFlags) register(fs *pflag.FlagSet, multiple string, def float64, usage string) {
	fs.IntVar(&f.Threads, "threads", 0, "worker threads (0: every CPU this process may run on)")
	fs.DurationVar(&f.Interval, "report-interval", workload.DefaultInterval, "how often to report counters, with a unit, e.g. 500ms")
	fs.StringVar(&f.socket, "socket", "", "host's agent socket (default $"+agent.EnvSocket+"; none: standalone)")
	fs.BoolVar(&f.bidding, "bidding", false, "bid for CPU slots in the host's auction at every tick")
	fs.IntVar(&f.Units, "units", 0, fmt.Sprintf("slots to bid for, 1 to %d (0: the thread count)", proto.MaxBidUnits))
	fs.Float64Var(&f.Multiple, multiple, def, usage)
}

// newAgentCmd builds "maxwell agent" and its workload subcommands.
func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a built-in workload (scientist or miner) as an agent",
		Long:  agentLong,
	}
	cmd.AddCommand(newAgentScientistCmd(), newAgentMinerCmd())
	return cmd
}

func newAgentScientistCmd() *cobra.Command {
	var (
		f       agentFlags
		limit   uint64
		segment uint64
	)
	cmd := &cobra.Command{
		Use:   "scientist",
		Short: "Count primes with a segmented sieve; reports primes, range_end, segments",
		Long: agentLong + `

The Scientist sieves [2, N] for growing N. Its primes counter is always
exactly the number of primes ≤ range_end, so anyone can check it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.Validate("valuation"); err != nil {
				return err
			}
			s := workload.Scientist{Threads: f.Threads, SegmentSize: segment, Limit: limit, Interval: f.Interval}
			strategy := workload.ScientistStrategy{Valuation: f.Multiple, Units: f.BidUnits()}
			hello := proto.Hello{Kind: "scientist", Name: "scientist", Useful: &proto.Useful{Counter: workload.CounterPrimes, Unit: "prime"}}
			return runAgent(cmd, f, hello, s.Run, strategy.Bid)
		},
	}
	f.register(cmd.Flags(), "valuation", workload.DefaultValuation,
		"with --bidding: the most it pays for a slot, in multiples of the slot's energy; it waits while the reserve is higher")
	cmd.Flags().Uint64Var(&limit, "limit", 0, "stop after sieving [2, limit] (0: run until stopped)")
	cmd.Flags().Uint64Var(&segment, "segment-size", workload.DefaultSegmentSize, "integers per sieve segment")
	return cmd
}

func newAgentMinerCmd() *cobra.Command {
	var (
		f         agentFlags
		churnRate float64
		chunkMiB  int
		shareBits int
	)
	cmd := &cobra.Command{
		Use:   "miner",
		Short: "Burn CPU hashing and churn memory; reports hashes, bytes_churned, ...",
		Long: agentLong + `

The Miner hashes with SHA-256 on every thread and, at --churn-mib-per-sec,
maps chunks of --chunk-mib MiB, writes every page, and frees them again
(alternately with madvise(MADV_DONTNEED) and munmap).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.Validate("greed"); err != nil {
				return err
			}
			rate, chunk, err := workload.MinerChurn(churnRate, chunkMiB)
			if err != nil {
				return err
			}
			m := workload.Miner{Threads: f.Threads, Interval: f.Interval, ChurnRate: rate, ChunkSize: chunk, ShareBits: shareBits}
			strategy := workload.MinerStrategy{Greed: f.Multiple, Units: f.BidUnits()}
			return runAgent(cmd, f, proto.Hello{Kind: "miner", Name: "miner"}, m.Run, strategy.Bid)
		},
	}
	f.register(cmd.Flags(), "greed", workload.DefaultGreed,
		"with --bidding: its price for a slot at every tick, in multiples of the slot's energy")
	cmd.Flags().Float64Var(&churnRate, "churn-mib-per-sec", 0, "memory churn in MiB per second (0: none)")
	cmd.Flags().IntVar(&chunkMiB, "chunk-mib", workload.DefaultChunkSize>>20, "size of each churned mapping in MiB")
	cmd.Flags().IntVar(&shareBits, "share-bits", workload.DefaultShareBits, "leading zero bits that make a hash a share")
	return cmd
}

// runAgent runs a workload as an agent (agent.Run): reporting to the host
// if one is configured, printing to stdout otherwise, and bidding as
// strategy says with --bidding.
func runAgent(cmd *cobra.Command, f agentFlags, hello proto.Hello, work agent.Work, strategy agent.Strategy) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := agent.FromEnv()
	if f.socket != "" {
		cfg = agent.Config{Transport: agent.Unix, Address: f.socket}
	}
	cfg.Hello = hello
	if !f.bidding {
		strategy = nil
	}
	err := agent.Run(ctx, agent.RunOptions{Config: cfg, Work: work, Strategy: strategy, Standalone: cmd.OutOrStdout(),
		Log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("agent", hello.Kind)})
	if err != nil {
		return fmt.Errorf("agent %s: %w", hello.Kind, err)
	}
	return nil
}

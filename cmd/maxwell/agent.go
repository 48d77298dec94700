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
	socket   string
	bidding  bool
	strategy string
}

// bidder is the agent's strategy: --strategy (default def) at --multiple.
func (f *agentFlags) bidder(def workload.StrategyKind) (agent.Strategy, error) {
	k, err := workload.ParseStrategy(f.strategy, def)
	if err != nil {
		return nil, fmt.Errorf("--strategy: %w", err)
	}
	return workload.Bidder(k, f.Multiple, f.BidUnits()), nil
}

func (f *agentFlags) register(fs *pflag.FlagSet, multiple string, def float64, usage string) {
	fs.StringVar(&f.strategy, "strategy", "", "with --bidding: prudent (waits while the reserve is above its price) or greedy (bids at every tick)")
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
		Short: "Run a built-in workload (scientist, miner, service or sort) as an agent",
		Long:  agentLong,
	}
	cmd.AddCommand(newAgentScientistCmd(), newAgentMinerCmd(), newAgentServiceCmd(), newAgentSortCmd())
	return cmd
}

func newAgentScientistCmd() *cobra.Command {
	var (
		f       agentFlags
		limit   uint64
		segment uint64
		inflate float64
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
			s := workload.Scientist{Threads: f.Threads, SegmentSize: segment, Limit: limit, Interval: f.Interval, Inflate: inflate}
			strategy, err := f.bidder(workload.Prudent)
			if err != nil {
				return err
			}
			hello := proto.Hello{Kind: "scientist", Name: "scientist", Useful: &proto.Useful{Counter: workload.CounterPrimes, Unit: "prime"}}
			return runAgent(cmd, f, hello, s.Run, strategy)
		},
	}
	f.register(cmd.Flags(), "valuation", workload.DefaultValuation,
		"with --bidding: the most it pays for a slot, in multiples of the slot's energy; it waits while the reserve is higher")
	cmd.Flags().Uint64Var(&limit, "limit", 0, "stop after sieving [2, limit] (0: run until stopped)")
	cmd.Flags().Uint64Var(&segment, "segment-size", workload.DefaultSegmentSize, "integers per sieve segment")
	cmd.Flags().Float64Var(&inflate, "inflate", 0, "lie: report this multiple of the primes found (to test a host's verification)")
	cmd.Flags().MarkHidden("inflate")
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
			strategy, err := f.bidder(workload.Greedy)
			if err != nil {
				return err
			}
			return runAgent(cmd, f, proto.Hello{Kind: "miner", Name: "miner"}, m.Run, strategy)
		},
	}
	f.register(cmd.Flags(), "greed", workload.DefaultGreed,
		"with --bidding: its price for a slot at every tick, in multiples of the slot's energy")
	cmd.Flags().Float64Var(&churnRate, "churn-mib-per-sec", 0, "memory churn in MiB per second (0: none)")
	cmd.Flags().IntVar(&chunkMiB, "chunk-mib", workload.DefaultChunkSize>>20, "size of each churned mapping in MiB")
	cmd.Flags().IntVar(&shareBits, "share-bits", workload.DefaultShareBits, "leading zero bits that make a hash a share")
	return cmd
}

func newAgentServiceCmd() *cobra.Command {
	var (
		f    agentFlags
		s    workload.Service
		work int
	)
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Serve HTTP on loopback under an open-loop load; reports requests and a latency histogram",
		Long: agentLong + `

The service answers HTTP requests on a loopback port, each costing --work-kib
KiB of SHA-256, while a load generator in the same process starts --rate
requests a second at fixed times. Latency is measured from each request's
intended start, so a pause shows in full; it is reported as a cumulative
histogram (latency_le_us_BOUND). Requests served are its useful work.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.Validate("valuation"); err != nil {
				return err
			}
			s.Interval, s.Work = f.Interval, work<<10
			strategy, err := f.bidder(workload.Prudent)
			if err != nil {
				return err
			}
			hello := proto.Hello{Kind: "service", Name: "service", Useful: &proto.Useful{Counter: workload.CounterRequests, Unit: "request"}}
			return runAgent(cmd, f, hello, s.Run, strategy)
		},
	}
	f.register(cmd.Flags(), "valuation", workload.DefaultValuation, "with --bidding: the most it pays for a slot, in multiples of the slot's energy")
	cmd.Flags().IntVar(&s.Rate, "rate", 200, "requests per second")
	cmd.Flags().IntVar(&work, "work-kib", 64, "KiB hashed per request")
	return cmd
}

func newAgentSortCmd() *cobra.Command {
	var (
		f      agentFlags
		runMiB int
	)
	cmd := &cobra.Command{
		Use:   "sort",
		Short: "Sort runs of records in memory mapped and freed per run; reports records_sorted",
		Long: agentLong + `

The sorter is useful work hungry for memory: it maps a run of --run-mib MiB,
fills it with pseudo-random 8-byte records, sorts and checks them, and
unmaps the run, again and again. Records sorted are its useful work.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.Validate("valuation"); err != nil {
				return err
			}
			s := workload.Sorter{RunSize: runMiB << 20, Interval: f.Interval}
			strategy, err := f.bidder(workload.Prudent)
			if err != nil {
				return err
			}
			hello := proto.Hello{Kind: "sort", Name: "sort", Useful: &proto.Useful{Counter: workload.CounterRecordsSorted, Unit: "record"}}
			return runAgent(cmd, f, hello, s.Run, strategy)
		},
	}
	f.register(cmd.Flags(), "valuation", workload.DefaultValuation, "with --bidding: the most it pays for a slot, in multiples of the slot's energy")
	cmd.Flags().IntVar(&runMiB, "run-mib", 64, "MiB per sorted run")
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/workload"
)

// Timeouts of an agent's exchanges with the host.
const (
	agentDialTimeout   = 10 * time.Second
	agentReportTimeout = 5 * time.Second
	agentFlushTimeout  = 2 * time.Second
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
	threads  int
	interval time.Duration
	socket   string
	bidding  bool
	units    int
}

func (f *agentFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.threads, "threads", 0, "worker threads (0: every CPU this process may run on)")
	fs.DurationVar(&f.interval, "report-interval", workload.DefaultInterval, "how often to report counters")
	fs.StringVar(&f.socket, "socket", "", "host's agent socket (default $"+agent.EnvSocket+"; none: standalone)")
	fs.BoolVar(&f.bidding, "bidding", false, "bid for CPU slots in the host's auction at every tick")
	fs.IntVar(&f.units, "units", 0, fmt.Sprintf("slots to bid for, 1 to %d (0: the thread count)", proto.MaxBidUnits))
}

func (f *agentFlags) check() error {
	if f.threads < 0 {
		return fmt.Errorf("--threads %d: want 0 or more", f.threads)
	}
	if f.interval <= 0 {
		return fmt.Errorf("--report-interval %v: want a positive duration", f.interval)
	}
	if f.units < 0 || f.units > proto.MaxBidUnits {
		return fmt.Errorf("--units %d: want 0 to %d", f.units, proto.MaxBidUnits)
	}
	return nil
}

// bidUnits returns how many slots the agent bids for: --units, else one per
// thread, at most proto.MaxBidUnits.
func (f *agentFlags) bidUnits() int {
	n := f.units
	if n == 0 {
		n = f.threads
	}
	if n == 0 {
		n = workload.AvailableCPUs()
	}
	return min(max(n, 1), proto.MaxBidUnits)
}

// checkMultiple checks a --valuation or --greed.
func checkMultiple(flag string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("--%s %v: want a positive number", flag, v)
	}
	return nil
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
		f         agentFlags
		limit     uint64
		segment   uint64
		valuation float64
	)
	cmd := &cobra.Command{
		Use:   "scientist",
		Short: "Count primes with a segmented sieve; reports primes, range_end, segments",
		Long: agentLong + `

The Scientist sieves [2, N] for growing N. Its primes counter is always
exactly the number of primes ≤ range_end, so anyone can check it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if err := checkMultiple("valuation", valuation); err != nil {
				return err
			}
			s := workload.Scientist{Threads: f.threads, SegmentSize: segment, Limit: limit, Interval: f.interval}
			strategy := workload.ScientistStrategy{Valuation: valuation, Units: f.bidUnits()}
			return runAgent(cmd, f, "scientist", s.Run, strategy.Bid)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().Float64Var(&valuation, "valuation", workload.DefaultValuation,
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
		greed     float64
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
			if err := f.check(); err != nil {
				return err
			}
			if !(churnRate >= 0) || churnRate > 1<<20 {
				return fmt.Errorf("--churn-mib-per-sec %v: want 0 to %d", churnRate, 1<<20)
			}
			if chunkMiB < 1 || chunkMiB > 1<<16 {
				return fmt.Errorf("--chunk-mib %d: want 1 to %d", chunkMiB, 1<<16)
			}
			if err := checkMultiple("greed", greed); err != nil {
				return err
			}
			m := workload.Miner{
				Threads:   f.threads,
				Interval:  f.interval,
				ChurnRate: uint64(math.Round(churnRate * (1 << 20))),
				ChunkSize: chunkMiB << 20,
				ShareBits: shareBits,
			}
			strategy := workload.MinerStrategy{Greed: greed, Units: f.bidUnits()}
			return runAgent(cmd, f, "miner", m.Run, strategy.Bid)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().Float64Var(&greed, "greed", workload.DefaultGreed,
		"with --bidding: its price for a slot at every tick, in multiples of the slot's energy")
	cmd.Flags().Float64Var(&churnRate, "churn-mib-per-sec", 0, "memory churn in MiB per second (0: none)")
	cmd.Flags().IntVar(&chunkMiB, "chunk-mib", workload.DefaultChunkSize>>20, "size of each churned mapping in MiB")
	cmd.Flags().IntVar(&shareBits, "share-bits", workload.DefaultShareBits, "leading zero bits that make a hash a share")
	return cmd
}

// runAgent runs a workload until it ends or a signal arrives, reporting to
// the host if one is configured and printing to stdout otherwise. With
// --bidding it also bids as strategy says.
func runAgent(cmd *cobra.Command, f agentFlags, kind string, run func(context.Context, func(map[string]uint64)) error, strategy agent.Strategy) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("agent", kind)

	cfg := agent.FromEnv()
	if f.socket != "" {
		cfg = agent.Config{Transport: agent.Unix, Address: f.socket}
	}
	if cfg.Address == "" {
		if f.bidding {
			return fmt.Errorf("--bidding needs a host: set --socket or $%s", agent.EnvSocket)
		}
		return agentStandalone(ctx, cmd.OutOrStdout(), run)
	}
	cfg.Hello = proto.Hello{Kind: kind, Name: kind}
	cfg.Bidding = f.bidding
	if !f.bidding {
		strategy = nil
	}

	dctx, cancel := context.WithTimeout(ctx, agentDialTimeout)
	c, err := agent.Dial(dctx, cfg)
	cancel()
	if err != nil {
		log.Error("cannot join the host", "address", cfg.Address, "err", err)
		return fmt.Errorf("agent %s: %w", kind, err)
	}
	defer c.Close()
	if f.bidding && !c.Bidding() {
		log.Error("the host runs no auction", "address", cfg.Address)
		return fmt.Errorf("agent %s: %w", kind, agent.ErrNotBidding)
	}
	log.Info("connected to host", "cell", c.Cell(), "address", cfg.Address, "bidding", f.bidding)
	return agentConnected(ctx, c, log, run, strategy)
}

// agentStandalone prints each report as a JSON line.
func agentStandalone(ctx context.Context, w io.Writer, run func(context.Context, func(map[string]uint64)) error) error {
	enc := json.NewEncoder(w)
	var werr error
	err := run(ctx, func(c map[string]uint64) {
		if werr == nil {
			werr = enc.Encode(c)
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if werr != nil {
		return fmt.Errorf("write counters: %w", werr)
	}
	return nil
}

// agentConnected runs the workload and sends its reports from a separate
// goroutine, so a slow host never stalls the work; only the latest
// counters wait to be sent. A send in progress is never cut short, so the
// workload's last report reaches the host before agentConnected returns.
// It returns an error when the connection is lost, which stops the
// workload too. A non-nil strategy bids at every tick until the workload
// returns.
func agentConnected(ctx context.Context, c *agent.Client, log *slog.Logger, run func(context.Context, func(map[string]uint64)) error, strategy agent.Strategy) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	latest := make(chan map[string]uint64, 1)
	finished := make(chan struct{}) // closed when the workload has returned
	lost := make(chan error, 2)     // one from the reporter, one from the bidder
	send := func(m map[string]uint64) bool {
		rctx, rcancel := context.WithTimeout(context.Background(), agentReportTimeout)
		defer rcancel()
		err := c.Report(rctx, m)
		var pe *agent.ProtocolError
		switch {
		case err == nil:
			return true
		case errors.As(err, &pe) && !pe.Fatal:
			log.Warn("host rejected a report", "code", pe.Code, "message", pe.Message)
			return true
		case errors.Is(err, context.DeadlineExceeded):
			log.Warn("host slow to acknowledge a report", "timeout", agentReportTimeout)
			return true
		}
		log.Error("connection to host lost", "err", err)
		lost <- err
		cancel(err)
		return false
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-latest:
				if !send(m) {
					return
				}
			case <-finished:
				select {
				case m := <-latest:
					send(m)
				default:
				}
				return
			}
		}
	}()

	bidCtx, stopBidding := context.WithCancel(ctx)
	defer stopBidding()
	if strategy != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := agent.RunBidder(bidCtx, c, strategy)
			if bidCtx.Err() != nil {
				return
			}
			log.Error("connection to host lost while bidding", "err", err)
			lost <- err
			cancel(err)
		}()
	}

	err := run(ctx, func(m map[string]uint64) {
		select { // replace an unsent report: counters are cumulative
		case <-latest:
		default:
		}
		latest <- m
	})
	close(finished)
	stopBidding()
	wg.Wait()
	select {
	case lerr := <-lost:
		return fmt.Errorf("agent: connection to host lost: %w", lerr)
	default:
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

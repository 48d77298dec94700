package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Work is an agent's work. It runs until ctx ends (or the work is done) and
// calls report with its cumulative counters whenever it has new ones; it
// must not block in report for long, and report must not be called after
// Work returns.
type Work func(ctx context.Context, report func(counters map[string]uint64)) error

// Default timeouts of Run's exchanges with the host.
const (
	DefaultDialTimeout   = 10 * time.Second
	DefaultReportTimeout = 5 * time.Second
)

// RunOptions configure Run.
type RunOptions struct {
	// Config says where the host is and how the agent introduces itself
	// (FromEnv, usually). With no Address the agent runs standalone.
	Config Config
	// Work is what the agent does.
	Work Work
	// Strategy, if set, bids at every tick (Config.Bidding is set for
	// it); nil bids nothing.
	Strategy Strategy
	// Standalone receives the counters as one JSON object per line when
	// there is no host; nil discards them.
	Standalone io.Writer
	// Log receives what goes wrong; nil discards.
	Log *slog.Logger
	// DialTimeout and ReportTimeout bound the handshake and each report;
	// 0 means the defaults.
	DialTimeout, ReportTimeout time.Duration
}

// Run runs an agent: it joins the host named by o.Config, runs o.Work, and
// sends its reports from a separate goroutine so that a slow host never
// stalls the work (only the latest counters wait to be sent; the last
// report reaches the host before Run returns). With a Strategy it also
// bids at every tick until the work returns.
//
// An agent that cannot be observed stops rather than burn CPU unmeasured:
// Run returns an error when the host refuses the agent or the connection
// is lost, which stops the work too. A single report the host rejects
// without closing the connection is logged, and the agent carries on.
// The end of ctx is a clean stop: Run returns nil.
//
// These few lines make any Go program an agent:
//
//	err := agent.Run(ctx, agent.RunOptions{Config: agent.FromEnv(), Work: myWork})
func Run(ctx context.Context, o RunOptions) error {
	if o.Work == nil {
		return errors.New("agent: Run needs Work")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ReportTimeout <= 0 {
		o.ReportTimeout = DefaultReportTimeout
	}
	if o.Config.Address == "" {
		if o.Strategy != nil {
			return fmt.Errorf("%w: an agent that bids needs a host ($%s)", ErrNoEndpoint, EnvSocket)
		}
		return standalone(ctx, o.Standalone, o.Work)
	}
	cfg := o.Config
	cfg.Bidding = o.Strategy != nil
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	c, err := Dial(dctx, cfg)
	cancel()
	if err != nil {
		o.Log.Error("cannot join the host", "address", cfg.Address, "err", err)
		return err
	}
	defer c.Close()
	if o.Strategy != nil && !c.Bidding() {
		o.Log.Error("the host runs no auction", "address", cfg.Address)
		return ErrNotBidding
	}
	o.Log.Info("connected to host", "cell", c.Cell(), "address", cfg.Address, "bidding", cfg.Bidding)
	return connected(ctx, c, o)
}

// standalone prints each report as a JSON line.
func standalone(ctx context.Context, w io.Writer, work Work) error {
	if w == nil {
		w = io.Discard
	}
	enc := json.NewEncoder(w)
	var werr error
	err := work(ctx, func(c map[string]uint64) {
		if werr == nil {
			werr = enc.Encode(c)
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if werr != nil {
		return fmt.Errorf("agent: write counters: %w", werr)
	}
	return nil
}

// connected runs the work with a reporter and, with a strategy, a bidder.
func connected(ctx context.Context, c *Client, o RunOptions) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	latest := make(chan map[string]uint64, 1)
	finished := make(chan struct{}) // closed when the work has returned
	lost := make(chan error, 2)     // one from the reporter, one from the bidder
	send := func(m map[string]uint64) bool {
		rctx, rcancel := context.WithTimeout(context.Background(), o.ReportTimeout)
		defer rcancel()
		err := c.Report(rctx, m)
		var pe *ProtocolError
		switch {
		case err == nil:
			return true
		case errors.As(err, &pe) && !pe.Fatal:
			o.Log.Warn("host rejected a report", "code", pe.Code, "message", pe.Message)
			return true
		case errors.Is(err, context.DeadlineExceeded):
			o.Log.Warn("host slow to acknowledge a report", "timeout", o.ReportTimeout)
			return true
		}
		o.Log.Error("connection to host lost", "err", err)
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
	if o.Strategy != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := RunBidder(bidCtx, c, o.Strategy)
			if bidCtx.Err() != nil {
				return
			}
			o.Log.Error("connection to host lost while bidding", "err", err)
			lost <- err
			cancel(err)
		}()
	}

	err := o.Work(ctx, func(m map[string]uint64) {
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

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/dash"
	"github.com/maxwellhq/maxwell/internal/lab"
)

func newDemoCmd(a *app) *cobra.Command {
	var (
		duration time.Duration
		rf       runFlags
		asJSON   bool
		headless bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the Scientist and the Miner under Maxwell's economy and tell the story",
		Long: `Launch the Scientist (finds primes) and the Miner (burns cycles, churns
memory) with equal wallets and no income, under Maxwell's economy: every
tick the host sells its CPUs in an auction whose reserve price follows the
temperature, winners pay, freeing memory pays Landauer's tax, and an agent
whose balance falls below zero dies. On a terminal the dashboard tells what
happens as it happens (q ends the demo early); otherwise, and with
--headless, the story is told as lines. The demo records a run directory
(with the ledger, the engine journal and the log) and prints the summary.

Energy and temperature come from the host's sensors where it has them, else
from the power model and thermal twin, and are labelled so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := durationFlag(cmd, duration, &cfg.Demo.Duration); err != nil {
				return err
			}
			out := rf.dir("demo")
			f, isFile := cmd.OutOrStdout().(*os.File)
			dashboard := !asJSON && !headless && isFile && isTerminal(f)
			var logPath string
			logw := cmd.ErrOrStderr()
			if dashboard {
				// Nothing else may write to the terminal the dashboard owns.
				if logw, logPath, err = lab.CreateLog(out); err != nil {
					return err
				}
			}
			env, err := a.lab(cmd, rf, cfg, logw)
			if err != nil {
				return err
			}
			o := lab.DemoOptions{Duration: cfg.Demo.Duration, Dir: out, Story: cmd.ErrOrStderr()}
			if dashboard {
				o.Story = nil
				o.Show = func(ctx context.Context, s lab.Session) error {
					return dash.Run(ctx, s.Economy, dash.Options{GoneLinger: 3 * time.Second, LogPath: logPath})
				}
			} else if !asJSON && !headless {
				o.Story = cmd.OutOrStdout()
			}
			if o.Story != nil {
				// The story tells the events; the log does not repeat them.
				env.Log = lab.WithoutToldEvents(env.Log)
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			res, err := env.Demo(ctx, o)
			if c, ok := logw.(io.Closer); ok && dashboard {
				c.Close()
			}
			if asJSON {
				if perr := printJSON(cmd.OutOrStdout(), res); perr != nil {
					return perr
				}
				return err
			}
			if werr := res.WriteText(cmd.OutOrStdout(), out); werr != nil {
				return werr
			}
			if logPath != "" {
				fmt.Fprintln(cmd.OutOrStdout(), "log:", logPath)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "how long to run, with a unit, e.g. 90s or 5m (default: the configuration's demo.duration, 60s)")
	rf.register(f)
	f.BoolVar(&asJSON, "json", false, "print the result as JSON; the story goes to stderr")
	f.BoolVar(&headless, "headless", false, "no dashboard: tell the story as lines on stderr")
	return cmd
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

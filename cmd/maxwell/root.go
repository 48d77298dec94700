package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/maxwellhq/maxwell/internal/buildinfo"
	"github.com/maxwellhq/maxwell/internal/calibrate"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/lab"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// app holds what every subcommand shares: the global flags. It is built
// once per command tree, not global state.
type app struct {
	configPath string
	sysRoot    string
	procRoot   string
	devRoot    string
	cgroupRoot string
	logLevel   string
}

// newRootCmd builds the command tree. Each subcommand lives in its own file.
func newRootCmd() *cobra.Command {
	a := &app{}
	host := sensors.HostRoots()
	root := &cobra.Command{
		Use:   "maxwell",
		Short: "A thermodynamic economy for autonomous agents on a Linux host",
		Long: `Maxwell runs agents in cells, sells them CPU time at a price that follows
the host's temperature, taxes freeing memory, and kills agents that cannot pay.

Every power and temperature figure says where it came from: a real sensor,
or a model (then it is labelled "estimated" and names the model).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Read().String(),
	}
	root.SetVersionTemplate("maxwell {{.Version}}\n")
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(_ *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 || target == root && len(args) > 0 {
				return fmt.Errorf("no help topic %q: `maxwell help` lists the commands", strings.Join(args, " "))
			}
			return target.Help()
		},
	})
	// A duration without a unit: say which units it takes.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		if strings.Contains(err.Error(), "missing unit in duration") {
			return fmt.Errorf("%w (give a unit: 500ms, 90s, 5m, 1h)", err)
		}
		return err
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "configuration file (YAML) on top of the embedded defaults")
	pf.StringVar(&a.sysRoot, "sysfs-root", host.Sys, "where sysfs is mounted (tests point this at a fixture tree)")
	pf.StringVar(&a.procRoot, "procfs-root", host.Proc, "where procfs is mounted")
	pf.StringVar(&a.devRoot, "devfs-root", host.Dev, "where /dev is (for /dev/cpu/N/msr)")
	pf.StringVar(&a.cgroupRoot, "cgroup-root", cell.DefaultOptions().CgroupRoot, "where the cgroup hierarchies are mounted")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	root.AddCommand(
		newSensorsCmd(a),
		newBaselineCmd(a),
		newDemoCmd(a),
		newCompareCmd(a),
		newStudyCmd(a),
		newVersionCmd(),
		newLedgerCmd(a),
		newHistoryCmd(a),
		newDaemonCmd(a),
		newSpawnCmd(a),
		newAdoptCmd(a),
		newPsCmd(a),
		newFundCmd(a),
		newKillCmd(a),
		newPauseCmd(a),
		newResumeCmd(a),
		newSetCmd(a),
		newHostCmd(a),
		newLogsCmd(a),
		newTopCmd(a),
		newConfigCmd(a),
		newCalibrateCmd(a),
		newAgentCmd(),
		newBenchCmd(a),
		newPlotCmd(a),
		newAuctionCmd(),
		newPoaCmd(),
		newVMCmd(a),
	)
	return root
}

func (a *app) roots() sensors.Roots {
	return sensors.Roots{Sys: a.sysRoot, Proc: a.procRoot, Dev: a.devRoot}
}

func (a *app) config() (config.Config, error) {
	c, _, err := config.Find(a.configPath, config.SystemPath)
	return c, err
}

// logger returns a logger writing text to w at the --log-level.
func (a *app) logger(w io.Writer) (*slog.Logger, error) { return logger(w, a.logLevel) }

func logger(w io.Writer, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// printYAML writes v as YAML.
func printYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newConfigCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the configuration in force and the file it came from",
		Long: `Config prints the configuration Maxwell runs with, and which file won:
--config FILE, else ` + config.SystemPath + `, else the embedded defaults (a file's
settings lie on top of the defaults). A file that is invalid is an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, from, err := config.Find(a.configPath, config.SystemPath)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					File   string        `json:"file,omitempty"`
					Config config.Config `json:"config"`
				}{from, c})
			}
			if from == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "# the embedded defaults (no --config, no %s)\n", config.SystemPath)
				_, err := cmd.OutOrStdout().Write(config.DefaultYAML())
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# %s on top of the embedded defaults: valid\n", from)
			return printYAML(cmd.OutOrStdout(), c)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: the file and the configuration")
	return cmd
}

// runFlags are the flags every experiment command has.
type runFlags struct {
	cpus, out, cell, vmImage string
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cpus, "cpus", "", `CPU list the agents share, e.g. "0-1" (default: every CPU Maxwell may use)`)
	fs.StringVar(&f.out, "out", "", "run directory to create (default runs/KIND-TIMESTAMP)")
	fs.StringVar(&f.cell, "cell", string(lab.Process), "cell backend for the agents: process, oci (runc containers) or vm (QEMU microVMs)")
	fs.StringVar(&f.vmImage, "vm-image", "", "with --cell vm: the guest image `DIR` that maxwell vm image built (default: one built for the run from this binary and the newest /boot kernel)")
}

// dir returns --out, or runs/KIND-TIMESTAMP.
func (f *runFlags) dir(kind string) string {
	if f.out == "" {
		f.out = filepath.Join("runs", kind+"-"+time.Now().Format("20060102-150405"))
	}
	return f.out
}

// lab returns the environment experiments run in, logging to logw.
func (a *app) lab(cmd *cobra.Command, f runFlags, cfg config.Config, logw io.Writer) (lab.Env, error) {
	kind, err := lab.ParseCellKind(f.cell)
	if err != nil {
		return lab.Env{}, fmt.Errorf("--cell: %w", err)
	}
	cpus, err := runCPUs(f.cpus)
	if err != nil {
		return lab.Env{}, err
	}
	// The story is told on the terminal; the log says only what went
	// wrong, unless --log-level asks for more.
	level := a.logLevel
	if !cmd.Flags().Changed("log-level") {
		level = "warn"
	}
	log, err := logger(logw, level)
	if err != nil {
		return lab.Env{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return lab.Env{}, fmt.Errorf("find the maxwell binary to run the agents: %w", err)
	}
	return lab.Env{Config: cfg, Roots: a.roots(), CgroupRoot: a.cgroupRoot, CPUs: cpus, Cell: kind, VMImage: f.vmImage, Exe: exe, ProfilePath: calibrate.DefaultProfilePath(),
		Clock: clock.System(), Log: log}, nil
}

// runCPUs parses --cpus: CPUs this process may use, all of them by default.
func runCPUs(list string) ([]int, error) {
	cpus, err := cpuset.Choose(list)
	if err != nil {
		return nil, fmt.Errorf("--cpus: %w", err)
	}
	return cpus, nil
}

// signalContext is the command's context, cancelled by SIGINT or SIGTERM.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

// durationFlag applies --duration, when given, over the configuration's
// duration *target.
func durationFlag(cmd *cobra.Command, d time.Duration, target *time.Duration) error {
	if !cmd.Flags().Changed("duration") {
		return nil
	}
	if d <= 0 {
		return fmt.Errorf("--duration %v must be positive (give a unit: 90s, 5m, 1h)", d)
	}
	*target = d
	return nil
}

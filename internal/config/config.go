// Package config loads Maxwell's configuration: a YAML file whose embedded
// default (default.yaml) is what runs when no file is given.
//
// Every number in the configuration is a setting, not a measurement. Where a
// setting stands for a measurement (the power model's reference server), the
// file names its source.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/maxwellhq/maxwell/internal/cpuset"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default configuration file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Config is Maxwell's configuration.
type Config struct {
	// SampleInterval is how often the recorder samples (default 1 s).
	SampleInterval time.Duration `yaml:"sample_interval"`
	PowerModel     PowerModel    `yaml:"power_model"`
	ThermalTwin    ThermalTwin   `yaml:"thermal_twin"`
	Baseline       Baseline      `yaml:"baseline"`
	Engine         Engine        `yaml:"engine"`
	Ledger         Ledger        `yaml:"ledger"`
	Income         Income        `yaml:"income"`
	CellLogs       CellLogs      `yaml:"cell_logs"`
	Demo           Demo          `yaml:"demo"`
}

// CellLogs bounds each cell's log files (package celllog).
type CellLogs struct {
	// MaxBytes is the size at which a cell's log rotates; Keep the
	// rotated files kept.
	MaxBytes int64 `yaml:"max_bytes"`
	Keep     int   `yaml:"keep"`
}

// Income configures pay for useful work (docs/INCOME.md).
type Income struct {
	// VerifyFraction is the share of a paid agent's claimed work the host
	// recounts.
	VerifyFraction float64 `yaml:"verify_fraction"`
}

// Ledger configures how the ledger keeps its history (docs/LEDGER.md).
type Ledger struct {
	// Keep is how long every charge of every tick is kept in detail
	// before it is folded into per-cell totals per Bucket; negative:
	// for ever.
	Keep   time.Duration `yaml:"keep"`
	Bucket time.Duration `yaml:"bucket"`
	// MaintainEvery is how often the economy does a step of that folding
	// and checkpoints the write-ahead log.
	MaintainEvery time.Duration `yaml:"maintain_every"`
}

// Engine configures Maxwell's economy.
type Engine struct {
	Tick            time.Duration `yaml:"tick"`
	Rule            string        `yaml:"rule"`
	SetpointCelsius float64       `yaml:"setpoint_celsius"`
	CriticalCelsius float64       `yaml:"critical_celsius"`
	PriceCeiling    float64       `yaml:"price_ceiling"`
	Gains           struct {
		Kp float64 `yaml:"kp"`
		Ki float64 `yaml:"ki"`
		Kd float64 `yaml:"kd"`
	} `yaml:"gains"`
	TaxPicojoulesPerByte        uint64 `yaml:"landauer_tax_picojoules_per_byte"`
	RentPicojoulesPerByteSecond uint64 `yaml:"memory_rent_picojoules_per_byte_second"`
	Insolvency                  string `yaml:"insolvency"`
	LowBalancePercent           int64  `yaml:"low_balance_percent"`
	// StartupGrace is how long a new cell without a standing bid gets a
	// startup slot at the reserve, so that its agent can start, connect
	// and bid (frozen, it never could).
	StartupGrace time.Duration `yaml:"startup_grace"`
	// Ration makes the economy sell less as well as dearer above the
	// setpoint: each slot is 1/multiplier of a CPU, so no price buys
	// more than the thermal allowance.
	Ration bool `yaml:"ration"`
	// RealtimePriority runs the tick on a thread of its own under
	// SCHED_FIFO at this priority (1–99) where the daemon may (root);
	// 0 runs it like any thread.
	RealtimePriority int `yaml:"realtime_priority"`
}

// Demo configures `maxwell demo`.
type Demo struct {
	Duration           time.Duration `yaml:"duration"`
	EndowmentCredits   int64         `yaml:"endowment_credits"`
	ScientistValuation float64       `yaml:"scientist_valuation"`
	MinerGreed         float64       `yaml:"miner_greed"`
}

// PowerModel configures the utilisation power model used where the host has
// no power sensor.
type PowerModel struct {
	Reference Reference `yaml:"reference"`
}

// Reference is a published power measurement of a real server.
type Reference struct {
	Name     string `yaml:"name"`
	Citation string `yaml:"citation"`
	// IdleWatts is the server's measured active-idle power (W).
	IdleWatts float64 `yaml:"idle_watts"`
	// MaxWatts is the server's measured power at 100% load (W).
	MaxWatts float64 `yaml:"max_watts"`
	// HardwareThreads is the number of hardware threads of the server
	// measured; the model scales the figures to this host's CPUs.
	HardwareThreads int `yaml:"hardware_threads"`
}

// ThermalTwin configures the first-order thermal RC model used where the
// host has no temperature sensor.
type ThermalTwin struct {
	AmbientCelsius float64 `yaml:"ambient_celsius"`
	// ResistanceKPerW is the thermal resistance R (K/W).
	ResistanceKPerW float64 `yaml:"resistance_kelvin_per_watt"`
	// CapacitanceJPerK is the heat capacity C (J/K); τ = R·C.
	CapacitanceJPerK float64 `yaml:"capacitance_joules_per_kelvin"`
}

// Baseline configures the baseline experiment.
type Baseline struct {
	Duration time.Duration `yaml:"duration"`
	// CPUs is a CPU list ("0-1"); empty means every CPU Maxwell may use.
	CPUs      string         `yaml:"cpus"`
	Scientist ScientistAgent `yaml:"scientist"`
	Miner     MinerAgent     `yaml:"miner"`
	// ConnectTimeout is how long an agent has to say hello before the run
	// records that it never connected.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// ScientistAgent configures the Scientist.
type ScientistAgent struct {
	// Threads is the number of worker threads; 0 means one per CPU the
	// agent may run on.
	Threads int `yaml:"threads"`
}

// MinerAgent configures the Miner.
type MinerAgent struct {
	Threads        int     `yaml:"threads"`
	ChurnMiBPerSec float64 `yaml:"churn_mib_per_sec"`
	ChunkMiB       int     `yaml:"chunk_mib"`
}

// Default returns the embedded default configuration.
func Default() Config {
	c, err := Parse(bytes.NewReader(defaultYAML))
	if err != nil {
		// The embedded file is tested; this cannot happen in a built binary.
		panic("config: embedded default.yaml is invalid: " + err.Error())
	}
	return c
}

// SystemPath is the configuration a host keeps, read when no file is
// named (Find).
const SystemPath = "/etc/maxwell/config.yaml"

// Find returns the configuration to run with and the file it came from:
// the file named (explicit), else system if it exists, else the embedded
// defaults (from ""). A file that exists but is invalid is an error,
// whichever it is.
func Find(explicit, system string) (Config, string, error) {
	path := explicit
	if path == "" && system != "" {
		if _, err := os.Stat(system); err == nil {
			path = system
		}
	}
	c, err := Load(path)
	return c, path, err
}

// Load reads the configuration file at path on top of the defaults: a
// setting the file leaves out keeps its default. An empty path gives the
// defaults.
func Load(path string) (Config, error) {
	if path == "" {
		return Default(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("load configuration: %w", err)
	}
	defer f.Close()
	c, err := parseOnto(Default(), f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a whole configuration from r and validates it.
func Parse(r io.Reader) (Config, error) { return parseOnto(Config{}, r) }

func parseOnto(c Config, r io.Reader) (Config, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every setting and reports the first that is wrong.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if c.SampleInterval < 10*time.Millisecond || c.SampleInterval > time.Hour {
		return bad("sample_interval %v must be between 10ms and 1h", c.SampleInterval)
	}
	ref := c.PowerModel.Reference
	if ref.Name == "" || ref.Citation == "" {
		return bad("power_model.reference needs a name and a citation: the model's figures must say where they come from")
	}
	if !finite(ref.IdleWatts) || !finite(ref.MaxWatts) || ref.IdleWatts <= 0 || ref.MaxWatts <= ref.IdleWatts {
		return bad("power_model.reference: need 0 < idle_watts (%v) < max_watts (%v)", ref.IdleWatts, ref.MaxWatts)
	}
	if ref.HardwareThreads <= 0 {
		return bad("power_model.reference.hardware_threads %d must be positive", ref.HardwareThreads)
	}
	tw := c.ThermalTwin
	if !finite(tw.AmbientCelsius) || tw.AmbientCelsius < -40 || tw.AmbientCelsius > 80 {
		return bad("thermal_twin.ambient_celsius %v must be between -40 and 80", tw.AmbientCelsius)
	}
	if !finite(tw.ResistanceKPerW) || tw.ResistanceKPerW <= 0 {
		return bad("thermal_twin.resistance_kelvin_per_watt %v must be positive", tw.ResistanceKPerW)
	}
	if !finite(tw.CapacitanceJPerK) || tw.CapacitanceJPerK <= 0 {
		return bad("thermal_twin.capacitance_joules_per_kelvin %v must be positive", tw.CapacitanceJPerK)
	}
	b := c.Baseline
	if b.Duration <= 0 {
		return bad("baseline.duration %v must be positive", b.Duration)
	}
	if _, err := cpuset.Parse(b.CPUs); err != nil {
		return bad("baseline.cpus: %v", err)
	}
	if b.ConnectTimeout <= 0 {
		return bad("baseline.connect_timeout %v must be positive", b.ConnectTimeout)
	}
	if b.Scientist.Threads < 0 || b.Miner.Threads < 0 {
		return bad("baseline: threads must be 0 (one per CPU) or positive")
	}
	if !finite(b.Miner.ChurnMiBPerSec) || b.Miner.ChurnMiBPerSec < 0 {
		return bad("baseline.miner.churn_mib_per_sec %v must be 0 or positive", b.Miner.ChurnMiBPerSec)
	}
	if b.Miner.ChunkMiB <= 0 || b.Miner.ChunkMiB > 1024 {
		return bad("baseline.miner.chunk_mib %d must be between 1 and 1024", b.Miner.ChunkMiB)
	}
	e := c.Engine
	if e.Tick < time.Millisecond || e.Tick > time.Minute {
		return bad("engine.tick %v must be between 1ms and 1m", e.Tick)
	}
	if e.Rule != "gsp" && e.Rule != "vcg" {
		return bad("engine.rule %q must be gsp or vcg", e.Rule)
	}
	if !finite(e.SetpointCelsius) || !finite(e.CriticalCelsius) || e.SetpointCelsius >= e.CriticalCelsius {
		return bad("engine.setpoint_celsius %v must be below critical_celsius %v", e.SetpointCelsius, e.CriticalCelsius)
	}
	if !finite(e.PriceCeiling) || e.PriceCeiling < 1 {
		return bad("engine.price_ceiling %v must be at least 1", e.PriceCeiling)
	}
	for name, g := range map[string]float64{"kp": e.Gains.Kp, "ki": e.Gains.Ki, "kd": e.Gains.Kd} {
		if !finite(g) || g < 0 {
			return bad("engine.gains.%s %v must be a finite number ≥ 0", name, g)
		}
	}
	if e.Insolvency != "kill" && e.Insolvency != "hibernate" {
		return bad("engine.insolvency %q must be kill or hibernate", e.Insolvency)
	}
	if e.StartupGrace < 0 || e.StartupGrace > time.Hour {
		return bad("engine.startup_grace %v must be between 0 and 1h", e.StartupGrace)
	}
	if e.RealtimePriority < 0 || e.RealtimePriority > 99 {
		return bad("engine.realtime_priority %d must be between 0 (off) and 99", e.RealtimePriority)
	}
	if cl := c.CellLogs; cl.MaxBytes < 4096 || cl.MaxBytes > 1<<34 || cl.Keep < 1 || cl.Keep > 100 {
		return bad("cell_logs: max_bytes %d and keep %d: want 4 KiB..16 GiB and 1..100", cl.MaxBytes, cl.Keep)
	}
	if f := c.Income.VerifyFraction; !(f > 0 && f <= 1) {
		return bad("income.verify_fraction %v must be in (0, 1]", f)
	}
	l := c.Ledger
	if l.Bucket < e.Tick || l.Bucket > 24*time.Hour {
		return bad("ledger.bucket %v must be between the tick (%v) and 24h", l.Bucket, e.Tick)
	}
	if l.Keep >= 0 && l.Keep < l.Bucket {
		return bad("ledger.keep %v must be at least one bucket (%v), or negative to keep everything", l.Keep, l.Bucket)
	}
	if l.MaintainEvery < e.Tick || l.MaintainEvery > time.Hour {
		return bad("ledger.maintain_every %v must be between the tick (%v) and 1h", l.MaintainEvery, e.Tick)
	}
	if e.LowBalancePercent < 0 || e.LowBalancePercent > 100 {
		return bad("engine.low_balance_percent %d must be between 0 and 100", e.LowBalancePercent)
	}
	d := c.Demo
	if d.Duration <= 0 {
		return bad("demo.duration %v must be positive", d.Duration)
	}
	if d.EndowmentCredits < 0 {
		return bad("demo.endowment_credits %d must be 0 (automatic) or positive", d.EndowmentCredits)
	}
	if !finite(d.ScientistValuation) || d.ScientistValuation <= 0 || !finite(d.MinerGreed) || d.MinerGreed <= 0 {
		return bad("demo: scientist_valuation %v and miner_greed %v must be positive", d.ScientistValuation, d.MinerGreed)
	}
	return nil
}

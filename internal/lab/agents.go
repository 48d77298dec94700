package lab

import (
	"strconv"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/units"
)

// The agents of the seed's story.
const (
	Scientist = "scientist"
	Miner     = "miner"
)

// storyAgents returns the Scientist and the Miner as the configuration
// says, each with wallet credits, bidding in the economy's auction when
// bidding is set, in that order; only those named in names (all with none).
func (env Env) storyAgents(wallet units.Credits, bidding bool, names ...string) []api.SpawnRequest {
	b := env.Config.Baseline
	sci := []string{env.Exe, "agent", "scientist", "--threads", strconv.Itoa(b.Scientist.Threads)}
	min := []string{env.Exe, "agent", "miner",
		"--threads", strconv.Itoa(b.Miner.Threads),
		"--churn-mib-per-sec", strconv.FormatFloat(b.Miner.ChurnMiBPerSec, 'f', -1, 64),
		"--chunk-mib", strconv.Itoa(b.Miner.ChunkMiB)}
	if bidding {
		sci = append(sci, "--bidding", "--valuation", strconv.FormatFloat(env.Config.Demo.ScientistValuation, 'f', -1, 64))
		min = append(min, "--bidding", "--greed", strconv.FormatFloat(env.Config.Demo.MinerGreed, 'f', -1, 64))
	}
	all := []api.SpawnRequest{
		{Name: Scientist, Argv: sci, Wallet: wallet},
		{Name: Miner, Argv: min, Wallet: wallet},
	}
	if len(names) == 0 {
		return all
	}
	var out []api.SpawnRequest
	for _, a := range all {
		for _, n := range names {
			if a.Name == n {
				out = append(out, a)
			}
		}
	}
	return out
}

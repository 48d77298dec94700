package api

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/maxwellhq/maxwell/internal/life"
)

// WriteTable prints the state as `maxwell ps` shows it: a header line with
// the host's temperature, power and prices, then one row per cell (dead
// ones only with all). A figure marked ~ is a model's estimate.
func (st State) WriteTable(w io.Writer, all bool) error {
	var cells []Cell
	for _, c := range st.Cells {
		if all || c.State != life.Dead {
			cells = append(cells, c)
		}
	}
	temp := "temperature unreadable: " + st.Temperature.Error
	if st.Temperature.Error == "" {
		temp = fmt.Sprintf("%s%.1f °C", tilde(st.Temperature.Source.Estimated), st.Temperature.Celsius)
	}
	power := "power unreadable"
	if st.Power.Error == "" {
		power = fmt.Sprintf("%s%.1f W", tilde(st.Power.Source.Estimated), st.Power.Watts)
	}
	fmt.Fprintf(w, "tick %d  %s (setpoint %.1f °C, %s)  %s (%s)  reserve %d  clearing %d  ×%.2f",
		st.Tick, temp, st.Temperature.Setpoint, describeSource(st.Temperature.Source), power, describeSource(st.Power.Source),
		st.Reserve, st.Clearing, st.Multiplier)
	if st.FailSafe {
		fmt.Fprint(w, "  FAIL-SAFE")
	}
	fmt.Fprintln(w)
	if len(cells) == 0 {
		_, err := fmt.Fprintln(w, "no cells")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tBALANCE\tBURN/s\tPAID\tTAX\tFREED\tENERGY\tCPU\tBID\tWON\tBACKEND")
	for _, c := range cells {
		pid := "-"
		if c.PID > 0 {
			pid = strconv.Itoa(c.PID)
		}
		bid := "-"
		if c.BidUnits > 0 {
			bid = fmt.Sprintf("%d×%d", c.BidUnits, c.BidPrice)
			if c.Standing {
				bid += " (policy)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%d\t%d\t%s\t%s%.1f J\t%.0f%%\t%s\t%d\t%s\n",
			c.Name, c.State, pid, c.Balance, c.BurnRate, c.Paid, c.Tax, bytesIEC(c.FreedBytes),
			tilde(c.EnergyEstimated), c.Energy, 100*c.CPUShare, bid, c.Won, c.Backend)
	}
	return tw.Flush()
}

func tilde(estimated bool) string {
	if estimated {
		return "~"
	}
	return ""
}

// describeSource names a source in a few words: "rapl package-0" or
// "model rc-twin, estimated".
func describeSource(s Source) string {
	if s.Kind == "" && s.Name == "" {
		return "no source"
	}
	out := s.Kind + " " + s.Name
	if s.Estimated {
		out += ", estimated"
	}
	return out
}

// bytesIEC formats n bytes with a binary prefix.
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/units"
)

// socketFlag adds --socket, the daemon's control socket, to cmd.
func socketFlag(cmd *cobra.Command) *string {
	p := new(string)
	cmd.Flags().StringVar(p, "socket", api.DefaultSocket(), "the daemon's control socket")
	return p
}

// creditsVar adds a flag of whole, non-negative credits.
func creditsVar(fs *pflag.FlagSet, p *units.Credits, name, usage string) {
	fs.Var((*creditsFlag)(p), name, usage)
}

type creditsFlag units.Credits

func (c *creditsFlag) String() string { return strconv.FormatInt(int64(*c), 10) }
func (c *creditsFlag) Type() string   { return "credits" }
func (c *creditsFlag) Set(s string) error {
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a whole number of credits, 0 or more")
	}
	*c = creditsFlag(n)
	return nil
}

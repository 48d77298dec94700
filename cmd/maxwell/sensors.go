package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/telemetry"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// sensorsReport is what `maxwell sensors --json` prints: the sensors'
// report, and the microVM host's under "vm".
type sensorsReport struct {
	telemetry.Report
	VM vm.Report `json:"vm"`
}

func newSensorsCmd(a *app) *cobra.Command {
	var (
		asJSON  bool
		vmImage string
	)
	cmd := &cobra.Command{
		Use:   "sensors",
		Short: "List every power and temperature source found, its tier, and which Maxwell would use; and the VMMs and accelerators for microVM cells",
		Long: `List every power and temperature source found on this host (powercap RAPL,
MSRs, hwmon, thermal zones), with its tier (1 calibrated sensor, 2 sensor,
3 model), whether it could be read, and which source Maxwell would use. Where
the host has no sensor, Maxwell uses a model and says which.

Then the VMMs and accelerators microVM cells can use (QEMU, KVM, TCG,
Firecracker, vhost-vsock), each with its version or why it is missing, and
what QEMU guests would run under. Where a guest image is found (--vm-image,
default ` + vmimage.DefaultDir() + `), a KVM probe guest is booted, as a daemon
does before its first microVM (a nested host's KVM may open and still not boot
a guest); without one, KVM is judged by /dev/kvm alone, and the report says
so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			tel, err := telemetry.Open(a.roots(), cfg, clock.System())
			if err != nil {
				return err
			}
			log, err := a.logger(io.Discard)
			if err != nil {
				return err
			}
			m := economy.OpenMeter(a.sysRoot, a.cgroupRoot, log)
			rep := sensorsReport{Report: tel.Report(m.Source())}
			m.Close()
			do := vm.DoctorOptions{DevRoot: a.devRoot}
			img, err := vmimage.Load(vmImage)
			switch {
			case err == nil:
				do.Kernel, do.Initrd = img.Kernel, img.Initrd
			case !errors.Is(err, vmimage.ErrNoImage) || cmd.Flags().Changed("vm-image"):
				return fmt.Errorf("--vm-image: %w", err)
			}
			rep.VM = vm.Doctor(cmd.Context(), do)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			if err := rep.WriteText(w, a.roots()); err != nil {
				return err
			}
			fmt.Fprintln(w)
			return rep.VM.WriteText(w)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&vmImage, "vm-image", vmimage.DefaultDir(), "guest image `DIR` to boot the KVM probe guest from")
	return cmd
}

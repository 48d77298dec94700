package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// newVMCmd builds `maxwell vm`, the microVM cells' tools.
func newVMCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Tools for microVM cells (spawn --vm, --cell vm)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newVMImageCmd(a))
	return cmd
}

// newVMImageCmd builds `maxwell vm image`.
func newVMImageCmd(*app) *cobra.Command {
	var (
		o       vmimage.Options
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "image [--kernel PATH] [--out DIR]",
		Short: "Build the guest image of microVM cells: a kernel and an initramfs with busybox, maxwell and the virtio modules",
		Long: `Build the guest image microVM cells boot: the kernel (--kernel, default the
newest /boot/vmlinuz-*), and an initramfs holding busybox-static, the maxwell
binary (--maxwell, default this one; a dynamically linked one brings its
libraries), the kernel's virtio modules (virtio-mmio, virtio-serial for the
agent's port, the balloon for Landauer's tax, virtio-blk for a root file
system image) from the kernel's /lib/modules/<version>, and a small init that
mounts, loads the modules and runs the cell's command.

The image goes to --out (default ` + vmimage.DefaultDir() + `, where a daemon looks
when a spawn --vm names no kernel and initramfs). Building is deterministic:
the same inputs give the same bytes, and an image already built from them is
kept as it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Maxwell == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the maxwell binary for the guest (or name one with --maxwell): %w", err)
				}
				o.Maxwell = exe
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			img, err := vmimage.Build(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), img)
			}
			w := cmd.OutOrStdout()
			state := "built"
			if img.Cached {
				state = "already built from the same inputs; kept"
			}
			fmt.Fprintf(w, "guest image %s (%s)\n", img.Digest[:12], state)
			fmt.Fprintf(w, "kernel:    %s (%s)\n", img.Kernel, img.KernelVersion)
			fmt.Fprintf(w, "initramfs: %s\n", img.Initrd)
			fmt.Fprintf(w, "modules:   %s\n", strings.Join(img.Modules, " "))
			if len(img.Builtin) > 0 {
				fmt.Fprintf(w, "built in:  %s\n", strings.Join(img.Builtin, " "))
			}
			fmt.Fprintf(w, "maxwell:   %s (from %s)\n", img.Maxwell, o.Maxwell)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kernel, "kernel", "", "guest kernel, a bzImage such as /boot/vmlinuz-VERSION (default: the newest in /boot); its modules must lie in <root>/lib/modules/VERSION")
	f.StringVar(&o.Out, "out", vmimage.DefaultDir(), "directory to write the image to")
	f.StringVar(&o.Maxwell, "maxwell", "", "maxwell binary to put in the guest (default: this one)")
	f.StringVar(&o.Busybox, "busybox", "", "statically linked busybox (default: Debian's busybox-static)")
	f.BoolVar(&asJSON, "json", false, "print the image as JSON")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long, with a unit")
	return cmd
}

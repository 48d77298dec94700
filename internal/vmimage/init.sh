#!/bin/sh
# Maxwell's guest init: PID 1 of a microVM cell (see package vmimage).
#
# It mounts proc, sys and dev, loads the kernel modules listed in
# /etc/maxwell/modules (dependencies first), names the virtio-serial ports
# under /dev/virtio-ports, then runs the cell's command and powers the VM
# off when it ends. The host passes the command on the kernel command line
# as maxwell.run=<base64 of a sh script>; it reads this init's lines on the
# console, all of which start with "maxwell-init: ":
#
#   maxwell-init: ready          the command is about to start
#   maxwell-init: exit N         the command ended with status N
#   maxwell-init: error TEXT     something failed before the command ran
#
# maxwell.probe=1 instead says "ready" and powers off at once (the host's
# accelerator probe). maxwell.root=DEV mounts a root file system image
# read-only and runs the command chrooted in it. A module parameter on the command line
# (virtio_mmio.device=..., as Firecracker passes) is given to insmod, as
# modprobe would.
export PATH=/bin
say() { echo "maxwell-init: $*"; }
# off ends the VM at once: sysrq b restarts without shutting devices down
# (a virtio-balloon still reporting free pages can hang an orderly
# reboot under TCG), which ends QEMU (-no-reboot). Nothing here needs
# syncing: the root is the initramfs. But what was written to the console
# may still wait in the tty's buffer for the UART (a loaded TCG host lost
# a command's output and init's exit line so): a moment first to drain.
off() {
	sleep 0.2 2>/dev/null || sleep 1
	echo b >/proc/sysrq-trigger
	reboot -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /dev/virtio-ports /run /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm

cmdline=$(cat /proc/cmdline)
if [ -f /etc/maxwell/modules ]; then
	while read -r m; do
		[ -n "$m" ] || continue
		name=${m##*/}
		name=${name%.ko}
		params=""
		for w in $cmdline; do
			case "$w" in
			"$name".*=*) params="$params ${w#"$name".}" ;;
			esac
		done
		# shellcheck disable=SC2086 # one word per parameter
		insmod "/lib/modules/$m" $params || say "error insmod $name failed"
	done </etc/maxwell/modules
fi

run=""
wait=""
probe=""
root=""
for w in $cmdline; do
	case "$w" in
	maxwell.run=*) run=${w#maxwell.run=} ;;
	maxwell.wait=*) wait=${w#maxwell.wait=} ;;
	maxwell.root=*) root=${w#maxwell.root=} ;;
	maxwell.probe=1) probe=1 ;;
	esac
done

# Name the virtio-serial ports, as udev would; a port appears once the
# host has announced it, shortly after virtio_console loads.
i=0
while :; do
	for d in /sys/class/virtio-ports/*; do
		[ -f "$d/name" ] || continue
		n=$(cat "$d/name")
		[ -n "$n" ] && [ ! -e "/dev/virtio-ports/$n" ] && ln -s "../${d##*/}" "/dev/virtio-ports/$n"
	done
	if [ -z "$wait" ] || [ -e "$wait" ] || [ $i -ge 100 ]; then
		break
	fi
	i=$((i + 1))
	usleep 50000
done
if [ -n "$wait" ] && [ ! -e "$wait" ]; then
	say "error $wait did not appear"
fi

# A root file system image of the user's (maxwell.root=/dev/vda): mounted
# read-only at /newroot, with proc, sys and dev inside it where it has
# the directories; the command then runs chrooted there.
if [ -n "$root" ]; then
	i=0
	while [ ! -b "$root" ] && [ $i -lt 100 ]; do
		i=$((i + 1))
		usleep 50000
	done
	mkdir -p /newroot
	if ! mount -o ro "$root" /newroot; then
		say "error cannot mount $root"
		off
	fi
	[ -d /newroot/proc ] && mount -t proc proc /newroot/proc
	[ -d /newroot/sys ] && mount -t sysfs sysfs /newroot/sys
	[ -d /newroot/dev ] && mount --bind /dev /newroot/dev
fi

if [ -n "$probe" ]; then
	say ready
	off
fi
if [ -z "$run" ]; then
	say "error no maxwell.run= on the kernel command line"
	off
fi
if ! echo "$run" | base64 -d >/run/maxwell-cell.sh 2>/dev/null; then
	say "error maxwell.run= is not base64"
	off
fi
say ready
sh /run/maxwell-cell.sh
say "exit $?"
off

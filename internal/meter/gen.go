package meter

// The BPF objects and their Go bindings (landauer_*_bpfel.go and .o) are
// generated from landauer.bpf.c and committed, so that go build needs no
// clang. Regenerate them with Debian's clang-14 and libbpf-dev:
//
//	apt-get install clang-14 llvm-14 libbpf-dev
//	go generate ./internal/meter
//
// .ci/bpf-check checks that the committed files match their source.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target amd64,arm64 -type counts_t landauer landauer.bpf.c -- -O2 -Wall -Werror

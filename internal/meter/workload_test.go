package meter

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The test workload frees a known number of bytes through every syscall
// the meter counts, from several threads of one process and from a child
// process. It is this test binary run again with workloadEnv set; see
// TestMain.
const (
	workloadEnv   = "MAXWELL_METER_WORKLOAD"
	mainThreads   = 4  // threads of the main workload process that free memory
	childThreads  = 2  // threads of its child that free memory
	repsPerThread = 50 // plan repetitions per thread
)

// planPerRep returns what one repetition of threadPlan frees, page being
// the page size.
func planPerRep(page uint64) Counts {
	var c Counts
	c.Calls[Munmap], c.Bytes[Munmap] = 5, (10+20+6+3+3)*page
	c.Calls[MadviseDontneed], c.Bytes[MadviseDontneed] = 1, 20*page
	c.Calls[MadviseFree], c.Bytes[MadviseFree] = 1, 8*page
	c.Calls[MadviseRemove], c.Bytes[MadviseRemove] = 1, 6*page
	c.Calls[Mremap], c.Bytes[Mremap] = 1, 5*page
	return c
}

// brkPlan is what brkOps frees: two shrinks, of 12 and 4 pages.
func brkPlan(page uint64) Counts {
	var c Counts
	c.Calls[Brk], c.Bytes[Brk] = 2, 16*page
	return c
}

// expected returns what a workload run (with child) frees in total.
func expected(page uint64, withChild bool) Counts {
	threads := uint64(mainThreads)
	if withChild {
		threads += childThreads
	}
	var c Counts
	per := planPerRep(page)
	for k := range NumKinds {
		c.Calls[k] = per.Calls[k] * threads * repsPerThread
		c.Bytes[k] = per.Bytes[k] * threads * repsPerThread
	}
	return c.Add(brkPlan(page))
}

func sys(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	if e != 0 {
		return r, e
	}
	return r, nil
}

func mmap(n uintptr, flags uintptr) (uintptr, error) {
	return sys(unix.SYS_MMAP, 0, n, unix.PROT_READ|unix.PROT_WRITE, flags|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
}

// touch has the kernel write a byte into each of the n bytes' pages at
// addr (getrandom), so that they are really allocated.
func touch(addr, n, page uintptr) {
	for off := uintptr(0); off < n; off += page {
		sys(unix.SYS_GETRANDOM, addr+off, 1, 0, 0, 0, 0)
	}
}

// threadPlan runs one repetition of the plan planPerRep describes, plus
// calls the meter must not count.
func threadPlan(page uintptr) error {
	p := page
	// munmap of 10 touched pages.
	a, err := mmap(10*p, unix.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	touch(a, 10*p, p)
	if _, err := sys(unix.SYS_MUNMAP, a, 10*p, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	// madvise DONTNEED 20 pages, FREE 8, WILLNEED (not counted), munmap 20.
	if a, err = mmap(20*p, unix.MAP_PRIVATE); err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	touch(a, 20*p, p)
	for _, c := range []struct{ n, advice uintptr }{{20 * p, unix.MADV_DONTNEED}, {8 * p, unix.MADV_FREE}, {5 * p, unix.MADV_WILLNEED}} {
		if _, err := sys(unix.SYS_MADVISE, a, c.n, c.advice, 0, 0, 0); err != nil {
			return fmt.Errorf("madvise %d: %w", c.advice, err)
		}
	}
	if _, err := sys(unix.SYS_MUNMAP, a, 20*p, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	// MADV_REMOVE on 6 shared pages, munmap 6.
	if a, err = mmap(6*p, unix.MAP_SHARED); err != nil {
		return fmt.Errorf("mmap shared: %w", err)
	}
	touch(a, 6*p, p)
	if _, err := sys(unix.SYS_MADVISE, a, 6*p, unix.MADV_REMOVE, 0, 0, 0); err != nil {
		return fmt.Errorf("madvise remove: %w", err)
	}
	if _, err := sys(unix.SYS_MUNMAP, a, 6*p, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	// mremap 8 → 3 pages (5 freed), 3 → 3 (not counted), munmap 3.
	if a, err = mmap(8*p, unix.MAP_PRIVATE); err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	touch(a, 8*p, p)
	if r, err := sys(unix.SYS_MREMAP, a, 8*p, 3*p, 0, 0, 0); err != nil || r != a {
		return fmt.Errorf("mremap shrink: %#x, %v", r, err)
	}
	if _, err := sys(unix.SYS_MREMAP, a, 3*p, 3*p, 0, 0, 0); err != nil {
		return fmt.Errorf("mremap same: %w", err)
	}
	if _, err := sys(unix.SYS_MUNMAP, a, 3*p, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	// munmap of 2 pages + 1 byte: the kernel unmaps 3 pages.
	if a, err = mmap(3*p, unix.MAP_PRIVATE); err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	touch(a, 3*p, p)
	if _, err := sys(unix.SYS_MUNMAP, a, 2*p+1, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("munmap unaligned: %w", err)
	}
	return nil
}

// brkOps grows the break by 16 pages and shrinks it back in two steps of
// 12 and 4 pages. Go does not use brk, so nothing else moves it.
func brkOps(page uintptr) error {
	cur, _ := sys(unix.SYS_BRK, 0, 0, 0, 0, 0, 0)
	if cur%page != 0 {
		return fmt.Errorf("initial break %#x not page-aligned", cur)
	}
	for _, want := range []uintptr{cur + 16*page, cur + 4*page, cur} {
		if r, _ := sys(unix.SYS_BRK, want, 0, 0, 0, 0, 0); r != want {
			return fmt.Errorf("brk(%#x) = %#x", want, r)
		}
	}
	return nil
}

// runThreads runs n OS threads, each waiting on start and then running
// reps repetitions of threadPlan; the returned function waits for them.
func runThreads(n int, start <-chan struct{}) func() error {
	page := uintptr(os.Getpagesize())
	var wg sync.WaitGroup
	errs := make([]error, n)
	ready := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
			ready <- struct{}{}
			<-start
			for range repsPerThread {
				if err := threadPlan(page); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	for range n {
		<-ready
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// workloadMain is the workload process. fd 3 reads the go byte, fd 4
// writes 'R' when ready and 'D' when done. Role "main" starts a child
// (role "child") first, unless role is "solo".
func workloadMain(role string) int {
	ctl, status := os.NewFile(3, "ctl"), os.NewFile(4, "status")
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "workload %s: %v\n", role, err)
		return 1
	}
	start := make(chan struct{})
	var child *exec.Cmd
	var childGo *os.File
	threads := mainThreads
	if role == "child" {
		threads = childThreads
	}
	wait := runThreads(threads, start)
	if role == "main" {
		goR, goW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		stR, stW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		child = exec.Command(os.Args[0])
		child.Env = append(os.Environ(), workloadEnv+"=child")
		child.Stderr = os.Stderr
		child.ExtraFiles = []*os.File{goR, stW}
		if err := child.Start(); err != nil {
			return fail(err)
		}
		goR.Close()
		stW.Close()
		childGo = goW
		if b, err := readByte(stR); err != nil || b != 'R' {
			return fail(fmt.Errorf("child not ready: %q %v", b, err))
		}
	}
	status.Write([]byte{'R'})
	if b, err := readByte(ctl); err != nil || b != 'G' {
		return fail(fmt.Errorf("no go: %q %v", b, err))
	}
	if childGo != nil {
		childGo.Write([]byte{'G'})
	}
	close(start)
	if err := wait(); err != nil {
		return fail(err)
	}
	if child != nil {
		if err := child.Wait(); err != nil {
			return fail(fmt.Errorf("child: %w", err))
		}
	}
	if role != "child" {
		if err := brkOps(uintptr(os.Getpagesize())); err != nil {
			return fail(err)
		}
	}
	status.Write([]byte{'D'})
	return 0
}

func readByte(r io.Reader) (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(r, b[:])
	return b[0], err
}

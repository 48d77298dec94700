package calibrate

import (
	"context"
	"crypto/sha256"
	"runtime"
	"sync"
)

// BusyLoad is a real CPU load: goroutines, each locked to its own OS
// thread, that hash in a tight loop until stopped.
type BusyLoad struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts threads busy threads. Starting a running load restarts it.
func (b *BusyLoad) Start(threads int) error {
	b.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	b.mu.Lock()
	b.cancel = cancel
	b.mu.Unlock()
	for range threads {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var sum [32]byte
			for ctx.Err() == nil {
				for range 1000 {
					sum = sha256.Sum256(sum[:])
				}
			}
		}()
	}
	return nil
}

// Stop stops the load and waits for its threads to finish.
func (b *BusyLoad) Stop() {
	b.mu.Lock()
	cancel := b.cancel
	b.cancel = nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.wg.Wait()
}

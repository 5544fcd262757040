package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBatchesWhatArrivesWhileOneIsProcessed(t *testing.T) {
	var batches [][]int
	var mu sync.Mutex
	release := make(chan struct{})
	first := true
	b := New(4, func(items []int, errs []error) {
		mu.Lock()
		batches = append(batches, append([]int(nil), items...))
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release // the others arrive while the first batch is processed
		}
		for i, v := range items {
			if v%2 == 1 {
				errs[i] = fmt.Errorf("odd %d", v)
			}
		}
	})
	var wg sync.WaitGroup
	results := make([]error, 10)
	do := func(i int) {
		defer wg.Done()
		results[i] = b.Do(context.Background(), i)
	}
	wg.Add(1)
	go do(0)
	for { // the first call is being processed, alone
		mu.Lock()
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	for i := 1; i < 10; i++ {
		wg.Add(1)
		go do(i)
	}
	for { // all nine are waiting
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == 9 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if len(batches) != 4 || len(batches[0]) != 1 || len(batches[1]) != 4 || len(batches[2]) != 4 || len(batches[3]) != 1 {
		t.Fatalf("batches %v, want [0] then 4, 4, 1", batches)
	}
	for i, err := range results {
		if (i%2 == 1) != (err != nil) || (err != nil && err.Error() != fmt.Sprintf("odd %d", i)) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	b.mu.Lock()
	running := b.running
	b.mu.Unlock()
	if running {
		t.Fatal("still draining with nothing pending")
	}
}

func TestDoReturnsWhenItsContextEnds(t *testing.T) {
	release := make(chan struct{})
	var processed atomic.Int32
	b := New(8, func(items []int, _ []error) {
		<-release
		processed.Add(int32(len(items)))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	close(release)
	if err := b.Do(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if processed.Load() != 2 { // the abandoned item was still processed
		t.Fatalf("processed %d", processed.Load())
	}
}

func TestNoGoroutineLeftWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	b := New(8, func([]int, []error) {})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); b.Do(context.Background(), i) }()
	}
	wg.Wait()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines, %d before", n, before)
	}
}

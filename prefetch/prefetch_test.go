package prefetch

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTakeInOrderAndDemand(t *testing.T) {
	b := New[int](8)
	if n := b.Want(); n != 0 {
		t.Fatalf("Want with no Receive = %d, want 0: nothing is fetched for nobody", n)
	}
	got := make(chan int)
	go func() {
		m, err := b.Take(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	<-b.Wake()
	for b.Want() == 0 { // the Take is waiting
		time.Sleep(time.Millisecond)
	}
	b.Put(1)
	b.Put(2)
	if m := <-got; m != 1 {
		t.Fatalf("took %d, want the oldest", m)
	}
	if n := b.Want(); n != 2 {
		t.Fatalf("Want after one take = %d, want 2 (twice the takes)", n)
	}
	if m, _ := b.Take(context.Background()); m != 2 {
		t.Fatalf("took %d, want 2", m)
	}
}

func TestStaleHandsBackWhatWaitedIdle(t *testing.T) {
	b := New[int](8)
	b.Put(1)
	b.Take(context.Background())
	b.Put(2)
	b.Put(3)
	if back := b.Stale(0); back != nil {
		t.Fatalf("handed back %v right after a take", back)
	}
	time.Sleep(Idle + 50*time.Millisecond)
	if back := b.Stale(0); len(back) != 2 || back[0] != 2 {
		t.Fatalf("Stale after Idle = %v, want [2 3]", back)
	}
	if n := b.Want(); n != 0 {
		t.Fatalf("Want while idle = %d", n)
	}
	b.Put(4)
	if back := b.Stale(time.Nanosecond); len(back) != 1 {
		t.Fatalf("Stale past maxAge = %v, want [4]", back)
	}
}

func TestFailAndClose(t *testing.T) {
	b := New[int](8)
	boom := errors.New("down")
	b.Fail(boom)
	if _, err := b.Take(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Take after Fail: %v", err)
	}
	done := make(chan error)
	go func() { _, err := b.Take(context.Background()); done <- err }()
	time.Sleep(10 * time.Millisecond)
	b.Put(7)
	<-done
	go func() { _, err := b.Take(context.Background()); done <- err }()
	time.Sleep(10 * time.Millisecond)
	b.Put(8)
	b.Put(9)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := b.Close(); len(left) != 1 || left[0] != 9 {
		t.Fatalf("Close returned %v, want [9]", left)
	}
	if _, err := b.Take(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Take after Close: %v", err)
	}
	if b.Put(10) {
		t.Fatal("Put after Close took the message")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New[int](1).Take(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take on a done context: %v", err)
	}
}

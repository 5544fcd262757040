package stripewebhook_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook"
)

// Each option serves the constructors it means and no other: since each
// constructor takes its own option interface, passing one elsewhere does
// not compile. This pins which interfaces each option's value implements.
func TestOptionsServeOnlyTheirConstructors(t *testing.T) {
	type kinds struct{ handler, worker, verifier, memory bool }
	kindsOf := func(o any) kinds {
		_, h := o.(stripewebhook.HandlerOption)
		_, w := o.(stripewebhook.WorkerOption)
		_, v := o.(stripewebhook.VerifierOption)
		_, m := o.(stripewebhook.MemoryStoreOption)
		return kinds{h, w, v, m}
	}
	handlerOnly := kinds{handler: true}
	workerOnly := kinds{worker: true}
	for _, tc := range []struct {
		name string
		opt  any
		want kinds
	}{
		{"WithClock", stripewebhook.WithClock(time.Now), kinds{handler: true, verifier: true, memory: true}},
		{"WithTolerance", stripewebhook.WithTolerance(time.Minute), kinds{handler: true, verifier: true}},
		{"WithLogger", stripewebhook.WithLogger(slog.Default()), kinds{handler: true, memory: true}},
		{"WithMaxBodyBytes", stripewebhook.WithMaxBodyBytes(1), handlerOnly},
		{"WithReadTimeout", stripewebhook.WithReadTimeout(time.Second), handlerOnly},
		{"WithDedup", stripewebhook.WithDedup(nil), handlerOnly},
		{"WithDedupKey", stripewebhook.WithDedupKey(nil), handlerOnly},
		{"WithLease", stripewebhook.WithLease(time.Second), handlerOnly},
		{"WithRetention", stripewebhook.WithRetention(time.Hour), handlerOnly},
		{"WithShortRetention", stripewebhook.WithShortRetention(time.Hour), handlerOnly},
		{"WithDedupFailOpen", stripewebhook.WithDedupFailOpen(), handlerOnly},
		{"WithErrorHook", stripewebhook.WithErrorHook(nil), handlerOnly},
		{"WithLivemode", stripewebhook.WithLivemode(true), handlerOnly},
		{"WithAccounts", stripewebhook.WithAccounts(""), handlerOnly},
		{"WithStrictAPIVersion", stripewebhook.WithStrictAPIVersion(), handlerOnly},
		{"WithObserver", stripewebhook.WithObserver(nil), handlerOnly},
		{"WithQueue", stripewebhook.WithQueue(nil), handlerOnly},
		{"WithConcurrency", stripewebhook.WithConcurrency(1), workerOnly},
		{"WithMaxAttempts", stripewebhook.WithMaxAttempts(1), workerOnly},
		{"WithBackoff", stripewebhook.WithBackoff(time.Second, time.Second), workerOnly},
		{"WithDrainTimeout", stripewebhook.WithDrainTimeout(time.Second), workerOnly},
	} {
		if got := kindsOf(tc.opt); got != tc.want {
			t.Errorf("%s serves %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

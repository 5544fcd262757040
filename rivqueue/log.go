package rivqueue

import "log/slog"

// slogDiscard keeps River's own logs quiet; the stripewebhook Worker logs
// what matters.
func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

package stripewebhook

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// signatureHints says, for a delivery whose signature matched no secret,
// the likely causes that can be told without showing a secret, a
// signature or the body: the attributes of its log line.
func signatureHints(body []byte, header string, now time.Time) []slog.Attr {
	var h parsedHeader
	if h.parse(header) != nil && h.n == 0 {
		return nil
	}
	var hints []string
	switch {
	case len(body) == 0:
		hints = append(hints, "the body is empty: something read it before the handler (a body parser or middleware); mount the handler before it")
	case body[0] == '{' && !bytes.ContainsRune(body, '\n'):
		hints = append(hints, "the body has no line breaks, but Stripe sends events pretty-printed: it was likely parsed and re-encoded before the handler; verify the raw bytes")
	}
	if h.n >= 2 {
		hints = append(hints, "the header carries "+strconv.Itoa(h.n)+" v1 signatures, as while Stripe rolls a secret, and none matches: the configured secret is likely another endpoint's, or the other mode's (test or live)")
	} else {
		hints = append(hints, "the signature matches no configured secret: each endpoint, and test and live mode, has its own whsec_ secret")
	}
	return []slog.Attr{
		slog.String("hint", strings.Join(hints, "; ")),
		slog.Duration("signature_age", now.Sub(time.Unix(h.t, 0)).Round(time.Second)),
	}
}

// Rejected deliveries are logged one by one up to rejectionBurst per
// rejectionWindow; past that they are counted, and the counts logged once
// the window is over, so that a flood of forged requests cannot flood the
// log.
const (
	rejectionBurst  = 10
	rejectionWindow = 10 * time.Second
)

// rejectionLog rate-limits the log lines of rejected deliveries. It needs
// no goroutine: a window's summary is logged with the first rejection after
// it.
type rejectionLog struct {
	mu         sync.Mutex
	start      time.Time
	logged     int
	suppressed map[Reason]int
}

// allow reports whether a rejection for reason at now may be logged (else
// it is counted), and, once per window that suppressed some, their counts
// by reason and the window's length.
func (l *rejectionLog) allow(now time.Time, reason Reason) (ok bool, suppressed map[Reason]int, over time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= rejectionWindow {
		if len(l.suppressed) > 0 {
			suppressed, over = l.suppressed, now.Sub(l.start)
			l.suppressed = nil
		}
		l.start, l.logged = now, 0
	}
	if l.logged < rejectionBurst {
		l.logged++
		return true, suppressed, over
	}
	if l.suppressed == nil {
		l.suppressed = make(map[Reason]int)
	}
	l.suppressed[reason]++
	return false, suppressed, over
}

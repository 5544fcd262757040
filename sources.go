package stripewebhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// StripeWebhookIPs are the addresses Stripe sends webhooks from, the
// WEBHOOKS list of [StripeWebhookIPsURL] as of 2026. Stripe changes it with
// seven days' notice: [FetchStripeWebhookIPs] reads it again.
var StripeWebhookIPs = []string{
	"3.18.12.63", "3.69.109.8", "3.120.168.93", "3.130.192.231", "13.235.14.237",
	"13.235.122.149", "18.211.135.69", "35.154.171.200", "35.157.207.129", "52.15.183.38",
	"54.88.130.119", "54.88.130.237", "54.187.174.169", "54.187.205.235", "54.187.216.72",
}

// StripeWebhookIPsURL is where Stripe publishes the addresses it sends
// webhooks from.
const StripeWebhookIPsURL = "https://stripe.com/files/ips/ips_webhooks.json"

// FetchStripeWebhookIPs reads the WEBHOOKS list of the JSON file at url
// ([StripeWebhookIPsURL]) with client, for [SourceFilter.SetAllowed]. It
// fails, changing nothing, on any status but 200, a list that is not one
// of addresses, or an empty one.
func FetchStripeWebhookIPs(ctx context.Context, client *http.Client, url string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("stripewebhook: webhook IPs: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stripewebhook: webhook IPs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stripewebhook: webhook IPs: GET %s: %s", url, resp.Status)
	}
	var file struct {
		Webhooks []string `json:"WEBHOOKS"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&file); err != nil {
		return nil, fmt.Errorf("stripewebhook: webhook IPs: %s: %w", url, err)
	}
	if len(file.Webhooks) == 0 {
		return nil, fmt.Errorf("stripewebhook: webhook IPs: %s has no WEBHOOKS addresses", url)
	}
	if _, err := parsePrefixes(file.Webhooks); err != nil {
		return nil, fmt.Errorf("stripewebhook: webhook IPs: %s: %w", url, err)
	}
	return file.Webhooks, nil
}

// ErrForbiddenSource is matched by every [*SourceError] (403).
var ErrForbiddenSource = errors.New("stripewebhook: delivery from a source that is not allowed")

// SourceError is a delivery refused for where it came from: its client
// address, or the reason none could be told (a malformed forwarding
// header from a trusted proxy).
type SourceError struct {
	Addr   netip.Addr // the client, when it could be told
	Reason string
}

func (e *SourceError) Error() string {
	if e.Addr.IsValid() {
		return fmt.Sprintf("stripewebhook: delivery from %s, which is not an allowed source", e.Addr)
	}
	return "stripewebhook: delivery refused: " + e.Reason
}

func (e *SourceError) Is(target error) bool { return target == ErrForbiddenSource }

// SourceFilter accepts deliveries only from allowed addresses
// ([WithSourceFilter]): Stripe's ([StripeWebhookIPs]), CIDRs of your own,
// or both. Behind a load balancer or a reverse proxy, the client's address
// is read from X-Forwarded-For or Forwarded, and only when the connection
// comes from a trusted proxy: the rightmost address that is not a trusted
// proxy is the client. A forwarding header from anywhere else is ignored,
// so it cannot be spoofed. IPv4-mapped IPv6 addresses are their IPv4
// address. It is safe for concurrent use; SetAllowed replaces the allowed
// set while requests are served.
type SourceFilter struct {
	allowed atomic.Pointer[[]netip.Prefix]
	proxies []netip.Prefix
}

// NewSourceFilter returns a filter allowing the addresses or CIDRs of
// allowed ("3.18.12.63", "10.0.0.0/8", "2001:db8::/32") from connections of
// trustedProxies (addresses or CIDRs; none when there is no proxy in
// front). An entry that is neither is an error matching
// [ErrInvalidOption]; so is an empty allowed, which would refuse every
// delivery.
func NewSourceFilter(allowed, trustedProxies []string) (*SourceFilter, error) {
	f := &SourceFilter{}
	proxies, err := parsePrefixes(trustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted proxies: %w", ErrInvalidOption, err)
	}
	f.proxies = proxies
	if err := f.SetAllowed(allowed); err != nil {
		return nil, err
	}
	return f, nil
}

// SetAllowed replaces the allowed addresses, as NewSourceFilter reads them.
// On an error the set is unchanged.
func (f *SourceFilter) SetAllowed(allowed []string) error {
	p, err := parsePrefixes(allowed)
	if err != nil {
		return fmt.Errorf("%w: allowed sources: %w", ErrInvalidOption, err)
	}
	if len(p) == 0 {
		return fmt.Errorf("%w: no allowed source: every delivery would be refused", ErrInvalidOption)
	}
	f.allowed.Store(&p)
	return nil
}

// Check returns nil if r comes from an allowed source, and a
// [*SourceError] otherwise.
func (f *SourceFilter) Check(r *http.Request) error {
	client, reason := f.client(r)
	if !client.IsValid() {
		return &SourceError{Reason: reason}
	}
	if !contains(*f.allowed.Load(), client) {
		return &SourceError{Addr: client}
	}
	return nil
}

// client returns r's client address: the peer, or, when the peer is a
// trusted proxy, the rightmost untrusted hop of the forwarding header.
func (f *SourceFilter) client(r *http.Request) (netip.Addr, string) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, "the connection's address cannot be read"
	}
	peer := ap.Addr().Unmap()
	if !contains(f.proxies, peer) {
		return peer, ""
	}
	hops, ok := forwardedFor(r.Header)
	if !ok {
		return netip.Addr{}, "a malformed forwarding header from a trusted proxy"
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if !contains(f.proxies, hops[i]) {
			return hops[i], ""
		}
	}
	// Every hop is a proxy: the leftmost one is as close to the client as
	// the header goes, or the peer itself when there is no header.
	if len(hops) > 0 {
		return hops[0], ""
	}
	return peer, ""
}

// forwardedFor returns the addresses of Forwarded's for= parameters (RFC
// 7239), or of X-Forwarded-For when there is no Forwarded, in order, over
// every line of the header. ok is false if one is not an address.
func forwardedFor(h http.Header) (hops []netip.Addr, ok bool) {
	if lines := h.Values("Forwarded"); len(lines) > 0 {
		for _, line := range lines {
			for elem := range strings.SplitSeq(line, ",") {
				for pair := range strings.SplitSeq(elem, ";") {
					k, v, found := strings.Cut(strings.TrimSpace(pair), "=")
					if !found || !strings.EqualFold(k, "for") {
						continue
					}
					a, ok := forwardedAddr(v)
					if !ok {
						return nil, false
					}
					hops = append(hops, a)
				}
			}
		}
		return hops, true
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for v := range strings.SplitSeq(line, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(v))
			if err != nil {
				return nil, false
			}
			hops = append(hops, a.Unmap())
		}
	}
	return hops, true
}

// forwardedAddr reads a Forwarded for= value: 192.0.2.1, "[2001:db8::1]",
// "192.0.2.1:4711" or "[2001:db8::1]:4711".
func forwardedAddr(v string) (netip.Addr, bool) {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parsePrefixes reads addresses and CIDRs.
func parsePrefixes(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, s := range entries {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func contains(set []netip.Prefix, a netip.Addr) bool {
	for _, p := range set {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Package redisstore is a stripewebhook.Store on Redis, through go-redis v9,
// so that replicas behind a load balancer process each Stripe event once.
//
// Each event key is one Redis string, "<name>:<key>", whose value is
// "c:<token>" while claimed and "d:<token>" once done, with a TTL of the
// lease or of the retention. Claim, Complete and Release are each one Lua
// script, so they are atomic, and Complete and Release only act on the
// caller's own claim. Redis's clock decides expiry, so replicas' clocks do
// not matter.
//
// It is a stripewebhook.StateStore too: an object's state mark is the string
// "<name>:state:<key>", "<created>:<event id>", advanced by a Lua script
// only to a later created, with a TTL of the keep.
//
//	store, err := redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}))
//	…
//	h, err := stripewebhook.NewHandler(d, secrets, stripewebhook.WithDedup(store))
//
// Redis must keep the keys for the retention: with an eviction policy other
// than noeviction or volatile-*, or without persistence, a restart or memory
// pressure forgets completed events and a later duplicate runs again.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripewebhook/stripewebhook"
)

// DefaultName is the default namespace of the keys: "stripewebhook:dedup:<key>".
const DefaultName = "stripewebhook:dedup"

// Store is a stripewebhook.Store on Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
}

var _ stripewebhook.StateStore = (*Store)(nil)

// Option configures a Store.
type Option func(*config)

type config struct{ prefix string }

// WithName replaces DefaultName, to share a database between applications:
// the keys are name + ":" + the event key. It must not be empty.
func WithName(name string) Option { return func(c *config) { c.prefix = name } }

// New returns a Store on client: a *redis.Client, *redis.ClusterClient or
// failover client. The caller owns the client and closes it. A nil client
// or an option out of range is an error matching
// [stripewebhook.ErrInvalidOption].
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	c := config{prefix: DefaultName}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case client == nil:
		return nil, fmt.Errorf("%w: redisstore.New: nil client", stripewebhook.ErrInvalidOption)
	case c.prefix == "":
		return nil, fmt.Errorf("%w: redisstore.WithName: empty name (the keys would mix with the application's)", stripewebhook.ErrInvalidOption)
	}
	return &Store{client: client, prefix: c.prefix + ":"}, nil
}

// claim: 0 claimed, 1 in progress, 2 done.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  if string.sub(v, 1, 2) == 'd:' then return 2 end
  return 1
end
redis.call('SET', KEYS[1], 'c:' .. ARGV[1], 'PX', ARGV[2])
return 0
`)

// complete: 1 done, 0 the claim is someone else's or already done.
var completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == 'c:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'd:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// extend: 1 renewed, 0 the claim is someone else's or done.
var extendScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == 'c:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'c:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'c:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// advance keeps ARGV[1]:ARGV[2] if nothing is kept or its created is
// older, and returns what is kept.
var advanceScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local created = tonumber(string.match(v, '^(-?%d+):'))
  if created and created >= tonumber(ARGV[1]) then return v end
end
v = ARGV[1] .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], v, 'PX', ARGV[3])
return v
`)

// stateKey is where the Mark of key lives.
func (s *Store) stateKey(key string) string { return s.prefix + "state:" + key }

// LastApplied implements stripewebhook.StateStore.
func (s *Store) LastApplied(ctx context.Context, key string) (stripewebhook.Mark, error) {
	v, err := s.client.Get(ctx, s.stateKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return stripewebhook.Mark{}, nil
	}
	if err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("redisstore: last applied: %w", err)
	}
	return parseMark(v)
}

// Advance implements stripewebhook.StateStore.
func (s *Store) Advance(ctx context.Context, key string, m stripewebhook.Mark, keep time.Duration) (stripewebhook.Mark, error) {
	v, err := advanceScript.Run(ctx, s.client, []string{s.stateKey(key)}, m.Created, m.EventID, max(keep.Milliseconds(), 1)).Text()
	if err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("redisstore: advance: %w", err)
	}
	return parseMark(v)
}

// parseMark reads "<created>:<event id>".
func parseMark(v string) (stripewebhook.Mark, error) {
	created, id, ok := strings.Cut(v, ":")
	n, err := strconv.ParseInt(created, 10, 64)
	if !ok || err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("redisstore: a state mark that is not <created>:<event id>: %q", v)
	}
	return stripewebhook.Mark{Created: n, EventID: id}, nil
}

// Claim implements stripewebhook.Store.
func (s *Store) Claim(ctx context.Context, key string, lease time.Duration) (stripewebhook.Claim, error) {
	token, err := stripewebhook.NewToken()
	if err != nil {
		return stripewebhook.Claim{}, err
	}
	n, err := claimScript.Run(ctx, s.client, []string{s.prefix + key}, token, max(lease.Milliseconds(), 1)).Int()
	if err != nil {
		return stripewebhook.Claim{}, fmt.Errorf("redisstore: claim: %w", err)
	}
	switch n {
	case 0:
		return stripewebhook.Claim{Status: stripewebhook.Claimed, Token: token}, nil
	case 1:
		return stripewebhook.Claim{Status: stripewebhook.InProgress}, nil
	}
	return stripewebhook.Claim{Status: stripewebhook.Done}, nil
}

// Complete implements stripewebhook.Store.
func (s *Store) Complete(ctx context.Context, key, token string, retention time.Duration) error {
	n, err := completeScript.Run(ctx, s.client, []string{s.prefix + key}, token, max(retention.Milliseconds(), 1)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: complete: %w", err)
	}
	if n == 0 {
		return stripewebhook.ErrClaimLost
	}
	return nil
}

// Persistent reports whether the server keeps its data on disk (an
// append-only file, or RDB snapshots): a server restarted without either
// forgets the completed events, and their late duplicates run again.
// Call it at start-up and warn when it is false. It returns an error when
// the server refuses CONFIG GET (managed services often do): unknown.
func (s *Store) Persistent(ctx context.Context) (bool, error) {
	aof, err := s.client.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: persistence: %w", err)
	}
	save, err := s.client.ConfigGet(ctx, "save").Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: persistence: %w", err)
	}
	return aof["appendonly"] == "yes" || strings.TrimSpace(save["save"]) != "", nil
}

// Extend implements stripewebhook.Store.
func (s *Store) Extend(ctx context.Context, key, token string, lease time.Duration) error {
	n, err := extendScript.Run(ctx, s.client, []string{s.prefix + key}, token, max(lease.Milliseconds(), 1)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: extend: %w", err)
	}
	if n == 0 {
		return stripewebhook.ErrClaimLost
	}
	return nil
}

// Release implements stripewebhook.Store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	if err := releaseScript.Run(ctx, s.client, []string{s.prefix + key}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: release: %w", err)
	}
	return nil
}

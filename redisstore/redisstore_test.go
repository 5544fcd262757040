package redisstore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/redisstore"
)

// envURL names the server the tests use; scripts/test.sh sets it.
const envURL = "STRIPEWEBHOOK_REDIS_URL"

func options(t *testing.T) *redis.Options {
	opt, err := redis.ParseURL(dedupstoretest.ServerURL(t, envURL, "redis://127.0.0.1:6379/0"))
	if err != nil {
		t.Fatalf("%s: %v", envURL, err)
	}
	return opt
}

func newStore(t *testing.T, c redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	s, err := redisstore.New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func client(t *testing.T, opt *redis.Options) *redis.Client {
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	opt := options(t)
	c := client(t, opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("%s=%s cannot be reached: %v", envURL, os.Getenv(envURL), err)
	}
	dedupstoretest.Run(t, dedupstoretest.Config{
		New:     func(t *testing.T) stripewebhook.Store { return newStore(t, c) },
		Backend: opt.Addr,
		NewVia: func(t *testing.T, addr string) stripewebhook.Store {
			o := *opt
			o.Addr = addr
			o.MaxRetries = -1 // fail fast: Stripe is the one who retries
			o.DialTimeout = time.Second
			return newStore(t, client(t, &o))
		},
	})
}

func TestKeyLayout(t *testing.T) {
	c := client(t, options(t))
	ctx := context.Background()
	s := newStore(t, c, redisstore.WithName("test:"+dedupstoretest.Key(t)))
	key := dedupstoretest.Key(t)
	claim, err := s.Claim(ctx, key, time.Minute)
	if err != nil || claim.Status != stripewebhook.Claimed {
		t.Fatalf("claim: %v %v", claim, err)
	}
	keys, err := c.Keys(ctx, "test:*"+key).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	v, _ := c.Get(ctx, keys[0]).Result()
	ttl, _ := c.PTTL(ctx, keys[0]).Result()
	if v != "c:"+claim.Token || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("claimed: %q ttl %v", v, ttl)
	}
	if err := s.Complete(ctx, key, claim.Token, stripewebhook.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	v, _ = c.Get(ctx, keys[0]).Result()
	ttl, _ = c.PTTL(ctx, keys[0]).Result()
	if !strings.HasPrefix(v, "d:") || ttl < 6*24*time.Hour {
		t.Fatalf("done: %q ttl %v", v, ttl)
	}
}

func TestUnreachable(t *testing.T) {
	// A client pointed at a closed port: every call is an error, never a
	// verdict.
	s := newStore(t, redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond}))
	if _, err := s.Claim(context.Background(), "evt_1", time.Minute); err == nil {
		t.Fatal("claim on a closed port succeeded")
	}
	if err := s.Complete(context.Background(), "evt_1", "t", time.Minute); err == nil || err == stripewebhook.ErrClaimLost {
		t.Fatalf("complete on a closed port: %v", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	if _, err := redisstore.New(nil); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Error("nil client accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err := redisstore.New(c, redisstore.WithName(""))
	if !errors.Is(err, stripewebhook.ErrInvalidOption) || !strings.Contains(err.Error(), "redisstore.WithName") {
		t.Errorf("empty name: %v", err)
	}
}

// Persistent reads the server's configuration: this one is told to keep
// nothing, then to snapshot (an hourly save point, restored before it
// could fire), and the answer follows. (Turning the append-only file on
// would write to the shared server's disk.)
func TestPersistent(t *testing.T) {
	c := client(t, options(t))
	ctx := context.Background()
	s, err := redisstore.New(c, redisstore.WithName(dedupstoretest.Key(t)))
	if err != nil {
		t.Fatal(err)
	}
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		t.Skipf("CONFIG GET refused: %v", err)
	}
	if aof["appendonly"] == "yes" {
		t.Skip("the server keeps an append-only file: always persistent")
	}
	save, _ := c.ConfigGet(ctx, "save").Result()
	t.Cleanup(func() { c.ConfigSet(ctx, "save", save["save"]) }) // as the server was
	for _, cfg := range []struct {
		save string
		want bool
	}{{"", false}, {"3600 1", true}, {"", false}} {
		if err := c.ConfigSet(ctx, "save", cfg.save).Err(); err != nil {
			t.Skipf("CONFIG SET refused: %v", err)
		}
		if got, err := s.Persistent(ctx); err != nil || got != cfg.want {
			t.Errorf("save %q: Persistent = %v, %v; want %v", cfg.save, got, err, cfg.want)
		}
	}
}

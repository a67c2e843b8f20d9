package issuermetadata_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/issuermetadata"
)

type reader struct {
	reads int
	fail  bool
	md    *issuermetadata.Metadata
}

func (r *reader) read(context.Context) (*issuermetadata.Metadata, error) {
	r.reads++
	if r.fail {
		return nil, errors.New("connection refused")
	}
	return r.md, nil
}

func TestCacheReadsAgainAfterTheInterval(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := &issuermetadata.Cache{Interval: time.Hour, Now: func() time.Time { return now }}
	r := &reader{md: &issuermetadata.Metadata{TokenEndpoint: "https://as.example/token"}}
	for range 3 {
		c.Get(context.Background(), "k", r.read)
	}
	if r.reads != 1 {
		t.Fatalf("%d reads within the interval", r.reads)
	}
	now = now.Add(time.Hour)
	if res := c.Get(context.Background(), "k", r.read); r.reads != 2 || !res.ReadAt.Equal(now) {
		t.Fatalf("%d reads, read at %s", r.reads, res.ReadAt)
	}
}

func TestCacheKeepsTheLastGoodDocumentWhileARereadFailsAndBacksOff(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	now := start
	c := &issuermetadata.Cache{Interval: time.Minute, Now: func() time.Time { return now }}
	r := &reader{md: &issuermetadata.Metadata{TokenEndpoint: "https://as.example/token"}}
	c.Get(context.Background(), "k", r.read)
	r.fail, now = true, now.Add(time.Minute)
	res := c.Get(context.Background(), "k", r.read)
	if res.Metadata == nil || res.Err == nil || !res.ReadAt.Equal(start) || !res.RetryAt.Equal(now.Add(5*time.Second)) {
		t.Fatalf("got %+v", res)
	}
	c.Get(context.Background(), "k", r.read)
	if r.reads != 2 {
		t.Fatalf("%d reads: the backoff holds the next read back", r.reads)
	}
	now = now.Add(5 * time.Second)
	if res = c.Get(context.Background(), "k", r.read); r.reads != 3 || !res.RetryAt.Equal(now.Add(10*time.Second)) {
		t.Fatalf("%d reads, retry at %s: the backoff doubles", r.reads, res.RetryAt)
	}
	r.fail, now = false, now.Add(10*time.Second)
	if res = c.Get(context.Background(), "k", r.read); res.Err != nil || !res.RetryAt.IsZero() || !res.ReadAt.Equal(now) {
		t.Fatalf("a good read clears the failure: %+v", res)
	}
}

func TestCacheInvalidateReadsAtOnceEvenDuringBackoff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := &issuermetadata.Cache{Now: func() time.Time { return now }}
	r := &reader{fail: true}
	if res := c.Get(context.Background(), "k", r.read); res.Metadata != nil || res.Err == nil {
		t.Fatalf("got %+v", res)
	}
	r.fail, r.md = false, &issuermetadata.Metadata{TokenEndpoint: "https://as.example/moved"}
	c.Invalidate("k")
	if res := c.Get(context.Background(), "k", r.read); res.Metadata == nil || r.reads != 2 {
		t.Fatalf("got %+v after %d reads", res, r.reads)
	}
}

func TestCacheKeysAreSeparate(t *testing.T) {
	c := &issuermetadata.Cache{}
	a := &reader{md: &issuermetadata.Metadata{TokenEndpoint: "https://a.example/token"}}
	b := &reader{md: &issuermetadata.Metadata{TokenEndpoint: "https://b.example/token"}}
	if c.Get(context.Background(), "a", a.read).Metadata != a.md || c.Get(context.Background(), "b", b.read).Metadata != b.md {
		t.Fatal("keys share an entry")
	}
}

package main

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// observer watches one or more namespaces and notes, per BankTokenRequest, when its output
// Secret first held a token, when it first turned Ready, every later change of the token (a
// refresh) and the last status it saw. It keys by name alone: the names of the requests it
// watches must be unique across its namespaces.
type observer struct {
	mu       sync.Mutex
	tokenAt  map[string]time.Time   // output Secret name -> first time it held a token
	token    map[string]string      // output Secret name -> current access_token
	reissued map[string][]time.Time // output Secret name -> times a new token replaced the old
	readyAt  map[string]time.Time   // BankTokenRequest name -> first time Ready=True
	status   map[string]tokensv1alpha1.BankTokenRequestStatus
	uids     map[string]string
	// history, kept only when keepHistory is set (the steady run): every token each output
	// Secret held and every renewal time each request's status planned, with when they were seen.
	keepHistory bool
	tokens      map[string][]heldSeen
	plans       map[string][]planSeen
}

// heldSeen is a token an output Secret held from seen on; issued is when the bench's bank
// issued it (see tokenIssuedAt).
type heldSeen struct{ seen, issued time.Time }

// planSeen is a renewal time a status planned, seen at seen.
type planSeen struct{ seen, renewAt time.Time }

func newObserver() *observer {
	return &observer{
		tokenAt: map[string]time.Time{}, token: map[string]string{}, reissued: map[string][]time.Time{},
		readyAt: map[string]time.Time{}, status: map[string]tokensv1alpha1.BankTokenRequestStatus{},
		uids: map[string]string{}, tokens: map[string][]heldSeen{}, plans: map[string][]planSeen{},
	}
}

// newHistoryObserver is an observer that also keeps every token and renewal plan seen.
func newHistoryObserver() *observer {
	o := newObserver()
	o.keepHistory = true
	return o
}

// start runs a cache of Secrets and BankTokenRequests in namespaces and returns once it
// is synced.
func (o *observer) start(ctx context.Context, c *cluster, namespaces ...string) error {
	watched := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		watched[ns] = cache.Config{}
	}
	ca, err := cache.New(c.Config, cache.Options{Scheme: c.Client.Scheme(), DefaultNamespaces: watched})
	if err != nil {
		return err
	}
	si, err := ca.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return err
	}
	bi, err := ca.GetInformer(ctx, &tokensv1alpha1.BankTokenRequest{})
	if err != nil {
		return err
	}
	if _, err := si.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.secret(obj) },
		UpdateFunc: func(_, obj any) { o.secret(obj) },
	}); err != nil {
		return err
	}
	if _, err := bi.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.btr(obj) },
		UpdateFunc: func(_, obj any) { o.btr(obj) },
	}); err != nil {
		return err
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		return fmt.Errorf("the bench's watch cache did not sync")
	}
	return nil
}

func (o *observer) secret(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	tok := string(s.Data[tokensv1alpha1.SecretKeyAccessToken])
	if tok == "" {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	old, seen := o.token[s.Name]
	switch {
	case !seen:
		o.tokenAt[s.Name] = now
	case old != tok:
		o.reissued[s.Name] = append(o.reissued[s.Name], now)
	}
	o.token[s.Name] = tok
	if o.keepHistory && old != tok {
		o.tokens[s.Name] = append(o.tokens[s.Name], heldSeen{seen: now, issued: tokenIssuedAt(tok)})
	}
}

func (o *observer) btr(obj any) {
	b, ok := obj.(*tokensv1alpha1.BankTokenRequest)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.keepHistory && b.Status.RenewalTime != nil {
		plans := o.plans[b.Name]
		if len(plans) == 0 || !plans[len(plans)-1].renewAt.Equal(b.Status.RenewalTime.Time) {
			o.plans[b.Name] = append(plans, planSeen{seen: now, renewAt: b.Status.RenewalTime.Time})
		}
	}
	o.status[b.Name] = *b.Status.DeepCopy()
	o.uids[b.Name] = string(b.UID)
	if _, seen := o.readyAt[b.Name]; !seen && meta.IsStatusConditionTrue(b.Status.Conditions, "Ready") {
		o.readyAt[b.Name] = now
	}
}

// progress counts the names whose Secret holds a token and which are Ready.
func (o *observer) progress(names []string) (withToken, ready, both int, last time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range names {
		t, okT := o.tokenAt[n]
		r, okR := o.readyAt[n]
		if okT {
			withToken++
		}
		if okR {
			ready++
		}
		if okT && okR {
			both++
			if t.After(last) {
				last = t
			}
			if r.After(last) {
				last = r
			}
		}
	}
	return withToken, ready, both, last
}

// waitAll waits until every name has a token and is Ready; it returns the time the last
// of them got there, or an error after timeout with how far it got.
func (o *observer) waitAll(ctx context.Context, names []string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		withToken, ready, both, last := o.progress(names)
		if both == len(names) {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("after %s: %d of %d Secrets hold a token, %d of %d are Ready",
				timeout, withToken, len(names), ready, len(names))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (o *observer) snapshotTokenAt() map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.tokenAt)
}

func (o *observer) snapshotStatus() map[string]tokensv1alpha1.BankTokenRequestStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.status)
}

// reissueTimes returns the first refresh time per name, for names refreshed at least once.
func (o *observer) reissueTimes() map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range o.reissued {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// refreshTally is what refreshesAfter counted.
type refreshTally struct {
	done        int       // Secrets that got at least the rounds asked for
	most        int       // the most new tokens one Secret got
	before      int       // new tokens seen before the time asked for
	first, last time.Time // the first and last new token seen after it
}

// refreshesAfter counts, for names, the new tokens seen in their Secrets after t.
func (o *observer) refreshesAfter(names []string, t time.Time, rounds int) refreshTally {
	o.mu.Lock()
	defer o.mu.Unlock()
	var tally refreshTally
	for _, n := range names {
		after := 0
		for _, at := range o.reissued[n] {
			if at.Before(t) {
				tally.before++
				continue
			}
			after++
			if tally.first.IsZero() || at.Before(tally.first) {
				tally.first = at
			}
			tally.last = later(tally.last, at)
		}
		if after >= rounds {
			tally.done++
		}
		tally.most = max(tally.most, after)
	}
	return tally
}

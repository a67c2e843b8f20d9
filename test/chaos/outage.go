package main

import (
	"context"
	"fmt"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

const outageNamespace = "chaos-outage"

// apiserverOutage is scenario 3: kube-apiserver stopped for a while, then started again
// on the same address. The outage begins just before the first renewal falls due, when
// each token has a little over 60s left: none may expire.
type apiserverOutage struct {
	w        *world
	duration time.Duration

	set     *tokenSet
	manager *harness.ManagerProcess
	checkLog
}

const (
	outageTokenLifetime = 90 * time.Second
	outageRenewBefore   = 61 * time.Second
	// outageRecovery is how long after the apiserver returns every token must be renewed.
	outageRecovery = 45 * time.Second
)

// outageResult is the scenario's table.
type outageResult struct {
	duration time.Duration
	rows     []outageRow
}

type outageRow struct {
	bankName providers.Name
	// leftAtStart is the held token's remaining lifetime when the apiserver stopped.
	leftAtStart time.Duration
	// callsDuring are token calls while the apiserver was down: their answers cannot be
	// written, so at most one per request is honest.
	callsDuring    int
	renewedAfter   time.Duration
	counts         bankCounts
	expired, lost  int
	longestRefused time.Duration
}

func (a *apiserverOutage) run(ctx context.Context) (outageResult, []string) {
	result := outageResult{duration: a.duration}
	if err := a.setUp(ctx); err != nil {
		return result, []string{"apiserver outage: setting up: " + err.Error()}
	}
	left, err := a.waitForFirstRenewal(ctx)
	if err != nil {
		return result, []string{"apiserver outage: " + err.Error()}
	}
	callsBefore := a.tokenCalls()
	if err := a.w.cp.StopAPIServer(); err != nil {
		return result, []string{"apiserver outage: stopping kube-apiserver: " + err.Error()}
	}
	logf("apiserver outage: kube-apiserver stopped for %s", a.duration)
	sleep(ctx, a.duration)
	callsDuring := a.tokenCalls()
	// Counted before the start: the manager may renew while StartAPIServer still waits for
	// readiness, and a renewal counted in the baseline would never be seen.
	issuedBefore := a.issuedCounts()
	backAt := time.Now()
	if err := a.w.cp.StartAPIServer(); err != nil {
		return result, []string{"apiserver outage: starting kube-apiserver again: " + err.Error()}
	}
	logf("apiserver outage: kube-apiserver is back; waiting up to %s for every token to be renewed", outageRecovery)
	renewed := a.waitRenewals(ctx, backAt, issuedBefore)
	sleep(ctx, time.Second) // the watch reads the renewed Secrets
	for _, btr := range a.set.requests {
		b := providers.Name(btr.Spec.Provider)
		result.rows = append(result.rows, a.finishRow(btr, left[b], callsDuring[b]-callsBefore[b], renewed[b]))
	}
	if exited, err := a.manager.Exited(); exited {
		a.failf("apiserver outage: the manager exited (%v) instead of recovering; see %s", err, a.manager.LogPath())
	} else if err := a.manager.Stop(10 * time.Second); err != nil {
		a.failf("apiserver outage: stopping the manager: %v", err)
	}
	return result, a.failures
}

func (a *apiserverOutage) setUp(ctx context.Context) error {
	for _, b := range rotatingBanks {
		a.w.bank.SetLifetime(b, outageTokenLifetime)
	}
	var err error
	a.set, err = newTokenSet(ctx, a.w, outageNamespace, 2*time.Second, renewingBefore(outageRenewBefore))
	if err != nil {
		return err
	}
	if a.manager, err = a.w.startManager("outage", "--watch-namespaces="+outageNamespace); err != nil {
		return err
	}
	if err := a.manager.WaitStarted(60 * time.Second); err != nil {
		return err
	}
	return a.set.waitFirstTokens(ctx, 30*time.Second)
}

// waitForFirstRenewal waits until half a second before the first renewal time in status
// and says how long each held token then has left.
func (a *apiserverOutage) waitForFirstRenewal(ctx context.Context) (map[providers.Name]time.Duration, error) {
	var first time.Time
	expires := map[providers.Name]time.Time{}
	for _, btr := range a.set.requests {
		st, _, err := harness.ReadStatus(ctx, a.w.cp.Client, btr)
		if err != nil || st.RenewalTime == nil || st.ExpiresAt == nil {
			return nil, fmt.Errorf("%s: no renewal time or expiry in status (%v)", btr.Name, err)
		}
		if first.IsZero() || st.RenewalTime.Before(&metav1.Time{Time: first}) {
			first = st.RenewalTime.Time
		}
		expires[providers.Name(btr.Spec.Provider)] = st.ExpiresAt.Time
	}
	sleep(ctx, time.Until(first.Add(-500*time.Millisecond)))
	left := map[providers.Name]time.Duration{}
	for b, at := range expires {
		left[b] = time.Until(at)
	}
	return left, nil
}

func (a *apiserverOutage) tokenCalls() map[providers.Name]int {
	calls := map[providers.Name]int{}
	for _, b := range rotatingBanks {
		calls[b] = a.w.bank.Requests(b)
	}
	return calls
}

// waitRenewals waits until each bank issued a token after the apiserver came back, and
// says how long after that each did; a bank missing from the answer renewed nothing.
// issuedCounts are the tokens each rotating bank has issued so far.
func (a *apiserverOutage) issuedCounts() map[providers.Name]int {
	issued := map[providers.Name]int{}
	for _, b := range rotatingBanks {
		c := countsAt(a.w, b)
		issued[b] = c.refreshes + c.primaryGrants
	}
	return issued
}

// waitRenewals waits for each rotating bank to issue a token beyond issued, and says how
// long after backAt (when the apiserver was being started again) it came.
func (a *apiserverOutage) waitRenewals(ctx context.Context, backAt time.Time, issued map[providers.Name]int) map[providers.Name]time.Duration {
	renewed := map[providers.Name]time.Duration{}
	for time.Since(backAt) < outageRecovery && len(renewed) < len(rotatingBanks) && ctx.Err() == nil {
		for _, b := range rotatingBanks {
			if c := countsAt(a.w, b); c.refreshes+c.primaryGrants > issued[b] && renewed[b] == 0 {
				renewed[b] = time.Since(backAt)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return renewed
}

func (a *apiserverOutage) finishRow(btr *tokensv1alpha1.BankTokenRequest, left time.Duration, callsDuring int, renewedAfter time.Duration) outageRow {
	b := providers.Name(btr.Spec.Provider)
	seen := a.set.watch.snapshot(outputKey(btr))
	row := outageRow{bankName: b, leftAtStart: left, callsDuring: callsDuring, renewedAfter: renewedAfter, counts: a.set.counts(b),
		expired: seen.expired, lost: seen.lost + seen.empty, longestRefused: seen.longestInvalid}
	if callsDuring > 1 {
		a.failf("apiserver outage: %s got %d token calls while the apiserver was down: duplicates of a call whose answer could not be written", b, callsDuring)
	}
	if renewedAfter == 0 {
		a.failf("apiserver outage: %s: no token issued within %s of the apiserver's return; see %s", b, outageRecovery, a.manager.LogPath())
	}
	if row.counts.reuses > 0 {
		a.failf("apiserver outage: %s received %d spent refresh token(s) again", b, row.counts.reuses)
	}
	if row.expired > 0 || row.lost > 0 {
		a.failf("apiserver outage: %s: %d token(s) expired (it had %s left when the apiserver stopped), %d refused or missing for over 2s",
			b, row.expired, left, row.lost)
	}
	return row
}

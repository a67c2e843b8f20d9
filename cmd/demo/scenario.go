package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The two failures the demo injects, each on one bank.
const (
	revokeBank = providers.Paymob  // revokes its refresh tokens: the operator must fall back
	outageBank = providers.Banfico // briefly unavailable: RefreshFailing, then Recovered
)

type note struct {
	at   time.Time
	text string
}

// scenario injects the failures at moments chosen so their effect shows within a short run:
// Paymob's revocation right after its first refresh (so the refresh token it holds is a
// rotated one), and Banfico's outage just before its second renewal, lifted once the
// operator's attempt has failed and before its first retry (5s backoff), so the token held
// is still valid throughout and Ready can stay true.
type scenario struct {
	d *demo

	mu           sync.Mutex
	notes        []note
	revokedAt    time.Time
	downAt, upAt time.Time
}

func newScenario(d *demo) *scenario { return &scenario{d: d} }

func (s *scenario) add(at time.Time, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, note{at: at, text: fmt.Sprintf(format, args...)})
}

func (s *scenario) allNotes() []note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]note(nil), s.notes...)
}

// injectedAt is when a failure was injected into bank; zero if none was.
func (s *scenario) injectedAt(bank providers.Name) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch bank {
	case revokeBank:
		return s.revokedAt
	case outageBank:
		return s.downAt
	}
	return time.Time{}
}

func (s *scenario) times() (revokedAt, downAt, upAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokedAt, s.downAt, s.upAt
}

func (s *scenario) run(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var o outage
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		revokedAt, downAt, upAt := s.times()
		// Paymob's next refresh comes within about two thirds of a lifetime.
		if revokedAt.IsZero() && s.d.bankIssued(revokeBank) >= 2 && s.timeLeft(now, s.d.opts.lifetime) {
			s.revoke(now)
		}
		s.stepOutage(ctx, now, &o, downAt, upAt)
	}
}

// timeLeft says whether the run goes on for need after from. A failure is injected only if
// the run lasts long enough to show the recovery: the summary would otherwise report a
// failure the operator had no time to recover from.
func (s *scenario) timeLeft(from time.Time, need time.Duration) bool {
	if s.d.opts.duration <= 0 {
		return true
	}
	return s.d.liveStart.Add(s.d.opts.duration).Sub(from) >= need
}

func (s *scenario) revoke(now time.Time) {
	s.d.bank.RevokeRefreshTokens(revokeBank)
	s.mu.Lock()
	s.revokedAt = now
	s.mu.Unlock()
	s.add(now, "sandbox: Paymob revokes every refresh token it has issued. Its next refresh gets invalid_grant: "+
		"expect RefreshTokenRejected, a fall back to the password grant, and Ready to stay True.")
}

// outage is what the run loop remembers of Banfico's outage between ticks.
type outage struct {
	target         time.Time // when to go down; zero until aimed
	rejectedBefore int       // the bank's rejected calls when it went down
	failedCallAt   time.Time // when the first call failed while it was down
}

// stepOutage aims Banfico's outage once it has issued twice, takes it down at the target,
// and brings it back up after the operator's first failed call.
func (s *scenario) stepOutage(ctx context.Context, now time.Time, o *outage, downAt, upAt time.Time) {
	bank := s.d.bank
	switch {
	case downAt.IsZero() && o.target.IsZero() && s.d.bankIssued(outageBank) >= 2:
		o.target = s.aimOutage(ctx, now)
	case downAt.IsZero() && !o.target.IsZero() && !now.Before(o.target):
		o.rejectedBefore = len(bank.Rejected(outageBank))
		bank.SetUnavailable(outageBank, true)
		s.mu.Lock()
		s.downAt = now
		s.mu.Unlock()
		s.add(now, "sandbox: Banfico goes down (503, an HTML error page) just before the operator renews. Expect "+
			"RefreshFailed and Ready True/RefreshFailing while the held token is still valid, then Recovered.")
	case !downAt.IsZero() && upAt.IsZero():
		if o.failedCallAt.IsZero() && len(bank.Rejected(outageBank)) > o.rejectedBefore {
			o.failedCallAt = now
		}
		// Back up 2s after the failed call: before the first retry, which backs off 5s±20%.
		if (!o.failedCallAt.IsZero() && now.Sub(o.failedCallAt) >= 2*time.Second) || now.Sub(downAt) > 20*time.Second {
			bank.SetUnavailable(outageBank, false)
			s.mu.Lock()
			s.upAt = now
			s.mu.Unlock()
			s.add(now, "sandbox: Banfico is back up; the operator retries when its backoff ends.")
		}
	}
}

// aimOutage is when Banfico should go down: just before the operator's next renewal, as
// its status announces it. It is zero while that is unknown, too close, or too late in the run.
func (s *scenario) aimOutage(ctx context.Context, now time.Time) time.Time {
	btr := &tokensv1alpha1.BankTokenRequest{}
	key := types.NamespacedName{Namespace: s.d.opts.namespace, Name: s.resourceOf(outageBank)}
	if err := s.d.k8s.Get(ctx, key, btr); err != nil || btr.Status.RenewalTime == nil ||
		!btr.Status.RenewalTime.Time.After(now.Add(2*time.Second)) {
		return time.Time{}
	}
	// Down before the renewal, up 2s after the failed call, the retry 4-6s later.
	target := btr.Status.RenewalTime.Time.Add(-1500 * time.Millisecond)
	if !s.timeLeft(target, 12*time.Second) {
		return time.Time{}
	}
	return target
}

func (s *scenario) resourceOf(bank providers.Name) string {
	for name, b := range s.d.bankOf {
		if b == bank {
			return name
		}
	}
	return ""
}

// summarize prints the verdict on the last snapshot and records whether any check failed.
// An interrupted run reports a failure injection still playing out as such, not as failed.
func (d *demo) summarize(s snapshot, sc *scenario, t *tracker, interrupted bool) {
	s = d.lookAgainAtRejectedTokens(s)
	fmt.Println()
	say("after %s:", strings.TrimPrefix(d.elapsed(s.at), "+"))
	var v verdict
	for _, r := range s.rows {
		ok, detail := rowVerdict(r)
		fmt.Printf("  %s %-26s %-15s %s\n", v.mark(ok), r.name, r.bank, detail)
	}
	if d.opts.failures {
		d.summarizeFailures(&v, s, sc, t, interrupted)
	} else {
		fmt.Println("  - failure injection off (--failures=false)")
	}
	accepted, refused := d.replaced.counts()
	fmt.Printf("  %s replaced tokens: %d still accepted by their bank's protected API right after the renewal, %d refused\n",
		v.mark(refused == 0), accepted, refused)
	if d.shared != nil {
		d.summarizeShared(&v, s)
	}
	d.failedChecks = v.failed
	if !v.failed {
		say("all %d banks Ready with at least one refresh each", len(s.rows))
		if d.shared != nil {
			say("ClusterBankConnection %s served team-a and team-b and refused team-c, with no call at the bank for it", sharedConnectionName)
		}
		return
	}
	say("some checks failed (see ✗ above)")
	if d.manager != nil && !interrupted {
		fmt.Printf("manager log (last lines):\n%s\n", d.manager.LogTail(20))
	}
}

// verdict marks each check ✓ or ✗ and remembers whether any failed.
type verdict struct{ failed bool }

func (v *verdict) mark(ok bool) string {
	if ok {
		return "✓"
	}
	v.failed = true
	return "✗"
}

// lookAgainAtRejectedTokens: a rotating bank revokes the old token the moment it answers a
// refresh; the Secret catches up a moment later. Look again briefly before calling a token
// rejected.
func (d *demo) lookAgainAtRejectedTokens(s snapshot) snapshot {
	for i := 0; i < 6 && anyTokenInvalid(s); i++ {
		time.Sleep(500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if again := d.observe(ctx); again.err == nil {
			s = again
		}
		cancel()
	}
	return s
}

// rowVerdict says whether a resource passed: Ready, refreshed at least once, and holding a
// token the bank accepts; the detail says what it has, or what it lacks.
func rowVerdict(r row) (ok bool, detail string) {
	var problems []string
	if r.ready != "True" {
		problems = append(problems, fmt.Sprintf("Ready is %s (%s: %s)", dash(r.ready), dash(r.reason), r.message))
	}
	if r.refreshes() < 1 {
		problems = append(problems, "no refresh yet")
	}
	if r.bankIssued < 2 {
		problems = append(problems, "the bank issued "+plural(r.bankIssued, "token", "tokens"))
	}
	if !r.tokenValid {
		problems = append(problems, fmt.Sprintf("the bank does not accept the token in Secret %s", r.secret))
	}
	if len(problems) > 0 {
		return false, strings.Join(problems, "; ")
	}
	return true, fmt.Sprintf("Ready (%s), %s, bank issued %d, the token in Secret %s is accepted by the bank",
		r.reason, plural(r.refreshes(), "refresh", "refreshes"), r.bankIssued, r.secret)
}

// summarizeFailures prints the verdict on each failure injected, or says it was not.
func (d *demo) summarizeFailures(v *verdict, s snapshot, sc *scenario, t *tracker, interrupted bool) {
	revokedAt, downAt, upAt := sc.times()
	for _, failure := range []struct {
		what       string
		injectedAt time.Time
		outcome    func() injectedFailure
	}{
		{"Paymob refresh-token revocation", revokedAt,
			func() injectedFailure { return d.revocationOutcome(s, t, rowOfBank(s, revokeBank).name, revokedAt) }},
		{"Banfico outage", downAt,
			func() injectedFailure { return d.outageOutcome(s, t, rowOfBank(s, outageBank).name, downAt, upAt) }},
	} {
		if failure.injectedAt.IsZero() {
			fmt.Printf("  - %s: not injected (the run was too short for it to play out)\n", failure.what)
			continue
		}
		switch c := failure.outcome(); {
		case interrupted && c.couldStillPass && !c.ok:
			fmt.Printf("  - %s (interrupted while it played out)\n", c.text)
		default:
			fmt.Printf("  %s %s\n", v.mark(c.ok), c.text)
		}
	}
}

// rowOfBank is the snapshot's row for bank, or an empty row.
func rowOfBank(s snapshot, bank providers.Name) row {
	for _, r := range s.rows {
		if r.bank == bank {
			return r
		}
	}
	return row{}
}

// injectedFailure is the verdict on one failure the demo injected.
type injectedFailure struct {
	ok bool
	// couldStillPass: an interrupted run reports it as still playing out, not as failed.
	couldStillPass bool
	text           string
}

// causeAndEffect finds the first event of causes about name since since, then the first
// of effects after it.
func causeAndEffect(events []eventsv1.Event, name string, since time.Time, causes, effects []string) (cause, effect *eventsv1.Event) {
	cause = firstEvent(events, name, since, causes...)
	if cause != nil {
		effect = firstEvent(events, name, eventTime(*cause), effects...)
	}
	return cause, effect
}

// describeCauseAndEffect says which of the two events came and when: "no <cause> event",
// "<cause> at T, <noEffect>" or "<cause> at T, <beforeEffect><effect> at T".
func (d *demo) describeCauseAndEffect(cause, effect *eventsv1.Event, causeReason, noEffect, beforeEffect string) string {
	switch {
	case cause == nil:
		return "no " + causeReason + " event"
	case effect == nil:
		return fmt.Sprintf("%s at %s, %s", cause.Reason, d.elapsed(eventTime(*cause)), noEffect)
	default:
		return fmt.Sprintf("%s at %s, %s%s at %s", cause.Reason, d.elapsed(eventTime(*cause)),
			beforeEffect, effect.Reason, d.elapsed(eventTime(*effect)))
	}
}

// revocationOutcome: after Paymob revokes its refresh tokens, the operator must fall back
// to the password grant and write a new token, with Ready staying True.
func (d *demo) revocationOutcome(s snapshot, t *tracker, name string, revokedAt time.Time) injectedFailure {
	var out injectedFailure
	rejected, written := causeAndEffect(s.events, name, revokedAt,
		[]string{evRefreshTokenRejected}, []string{evTokenRefreshed, evRecovered})
	stayed := !t.readyFalseAfter[name]
	out.ok, out.couldStillPass = rejected != nil && written != nil && stayed, stayed
	out.text = fmt.Sprintf("Paymob refresh tokens revoked at %s: ", d.elapsed(revokedAt)) +
		d.describeCauseAndEffect(rejected, written, evRefreshTokenRejected,
			"but no new token written after it", "fell back to the password grant, ")
	if stayed {
		out.text += "; Ready stayed True"
	} else {
		out.text += "; Ready went False"
	}
	return out
}

// outageOutcome: while Banfico is down the refresh fails and Ready stays True with reason
// RefreshFailing; once it is up, the operator recovers.
func (d *demo) outageOutcome(s snapshot, t *tracker, name string, downAt, upAt time.Time) injectedFailure {
	out := injectedFailure{couldStillPass: true}
	failed, recovered := causeAndEffect(s.events, name, downAt, []string{evRefreshFailed}, []string{evRecovered})
	out.ok = failed != nil && recovered != nil
	out.text = fmt.Sprintf("Banfico down at %s", d.elapsed(downAt))
	if !upAt.IsZero() {
		out.text += fmt.Sprintf(", up at %s", d.elapsed(upAt))
	}
	out.text += ": " + d.describeCauseAndEffect(failed, recovered, evRefreshFailed, "not Recovered by the end", "")
	switch {
	case t.readyFalseAfter[name]:
		out.text += "; Ready went False meanwhile (the held token expired)"
	case t.reasonsAfter[name]["RefreshFailing"]:
		out.text += "; Ready stayed True, reason RefreshFailing while down"
	default:
		out.text += "; Ready stayed True"
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func anyTokenInvalid(s snapshot) bool {
	for _, r := range s.rows {
		if !r.tokenValid {
			return true
		}
	}
	return false
}

// firstEvent is the first event about name with one of reasons at or after since.
func firstEvent(events []eventsv1.Event, name string, since time.Time, reasons ...string) *eventsv1.Event {
	for i := range events {
		e := &events[i]
		if e.Regarding.Name != name || eventTime(*e).Before(since.Truncate(time.Microsecond)) {
			continue
		}
		for _, reason := range reasons {
			if e.Reason == reason {
				return e
			}
		}
	}
	return nil
}

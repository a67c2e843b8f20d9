package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// sameAttempt groups calls this close together into one attempt: a refused refresh is
// followed at once by the primary grant, by design.
const sameAttempt = 1500 * time.Millisecond

// minBackoff is the shortest wait the operator's backoff allows after a failure (5s less
// its 20% jitter), less half a second for status times in whole seconds.
const minBackoff = 3500 * time.Millisecond

// matrixCell is one fault at one bank: what the bank saw, what status said, how long the
// bank took to be Ready with a new token after the fault was cleared.
type matrixCell struct {
	fault    string
	bankName providers.Name
	// calls are the token calls during the fault; with a server-wide fault, the
	// handshakes of every bank's calls together.
	calls, attempts int
	minGap          time.Duration
	serverWide      bool
	// reasons are the Ready reasons seen during the fault, in order.
	reasons            []string
	readyFalse         bool
	failedSeen         bool
	renewedDuringFault bool
	// stalled: the operator gave up retrying (a failure it judged permanent).
	stalled        bool
	recovered      time.Duration
	recoveredOK    bool
	longestRefused time.Duration
	emptied        int
}

// statusSeen is what polling a request's status during a fault saw.
type statusSeen struct {
	reasons                                  []string
	readyFalse, failedSeen, renewed, stalled bool
}

func (m *faultMatrix) runFault(ctx context.Context, fc faultCase) []matrixCell {
	if err := m.waitRecovered(ctx, time.Now(), nil, 60*time.Second); err != nil {
		m.failf("fault matrix: %s: not settled before the fault: %v", fc.name, err)
		return nil
	}
	cellCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := newTokenWatch(m.w.cp.Client, m.w.bank, time.Second)
	for _, btr := range m.requests {
		watch.add(btr)
	}
	go watch.run(cellCtx)
	start := time.Now()
	m.setFault(fc, true)
	seen := m.observe(ctx, start)
	handshakes := m.w.bank.TLSFaultHandshakes()
	m.setFault(fc, false)
	clearedAt := time.Now()
	if fc.permanent {
		m.fixCredentials(ctx)
	}
	recovered := map[string]time.Duration{}
	if err := m.waitRecovered(ctx, clearedAt, recovered, matrixRecovery); err != nil {
		m.failf("fault matrix: %s: %v; see %s", fc.name, err, m.manager.LogPath())
	}
	var cells []matrixCell
	for _, btr := range m.requests {
		b := providers.Name(btr.Spec.Provider)
		cell := matrixCell{fault: fc.name, bankName: b, serverWide: fc.serverWide, calls: handshakes}
		if !fc.serverWide {
			cell.calls, cell.attempts, cell.minGap = callsBetween(m.w, b, start, clearedAt)
		}
		s := seen[btr.Name]
		cell.reasons, cell.readyFalse, cell.failedSeen, cell.renewedDuringFault, cell.stalled = s.reasons, s.readyFalse, s.failedSeen, s.renewed, s.stalled
		cell.recovered, cell.recoveredOK = recovered[btr.Name], recovered[btr.Name] >= 0
		watched := watch.snapshot(outputKey(btr))
		cell.longestRefused, cell.emptied = watched.longestInvalid, watched.empty
		m.check(fc, &cell)
		cells = append(cells, cell)
	}
	return cells
}

func (m *faultMatrix) setFault(fc faultCase, on bool) {
	for _, b := range m.banks {
		if err := fc.set(m.w.bank, b, on); err != nil {
			m.failf("fault matrix: %s: setting the fault: %v", fc.name, err)
		}
		if fc.serverWide {
			return
		}
	}
}

// observe polls every request's status for the matrix's window.
func (m *faultMatrix) observe(ctx context.Context, start time.Time) map[string]*statusSeen {
	seen := map[string]*statusSeen{}
	issuedBefore := map[string]*metav1.Time{}
	for _, btr := range m.requests {
		seen[btr.Name] = &statusSeen{}
		if _, st, err := m.readStatus(ctx, btr); err == nil {
			issuedBefore[btr.Name] = st.IssuedAt
		}
	}
	for time.Since(start) < m.window && ctx.Err() == nil {
		for _, btr := range m.requests {
			ready, st, err := m.readStatus(ctx, btr)
			if err != nil {
				continue
			}
			s := seen[btr.Name]
			if said := readySays(ready); said != "" && !slices.Contains(s.reasons, said) {
				s.reasons = append(s.reasons, said)
			}
			s.readyFalse = s.readyFalse || ready.Status == metav1.ConditionFalse
			s.failedSeen = s.failedSeen || st.FailedAttempts > 0 || ready.Reason != tokensv1alpha1.ReasonTokenIssued
			s.renewed = s.renewed || !st.IssuedAt.Equal(issuedBefore[btr.Name])
			s.stalled = s.stalled || meta.IsStatusConditionTrue(st.Conditions, tokensv1alpha1.ConditionStalled)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return seen
}

// failureInMessage finds the failure's own reason in a Ready message such as "token valid
// until …, but refreshing it failed (ServerError): …".
var failureInMessage = regexp.MustCompile(`failing \((\w+)\)|failed \((\w+)\)`)

// readySays is Ready's reason, with the failure's reason from the message when it names one.
func readySays(ready metav1.Condition) string {
	m := failureInMessage.FindStringSubmatch(ready.Message)
	if m == nil {
		return ready.Reason
	}
	return ready.Reason + "(" + m[1] + m[2] + ")"
}

// waitRecovered waits until every request is Ready with no failed attempt and holds a
// token issued after since; it records in recovered how long each took after now, and -1
// for one that did not.
func (m *faultMatrix) waitRecovered(ctx context.Context, since time.Time, recovered map[string]time.Duration, timeout time.Duration) error {
	began := time.Now()
	pending := map[string]*tokensv1alpha1.BankTokenRequest{}
	for _, btr := range m.requests {
		pending[btr.Name] = btr
	}
	for len(pending) > 0 && time.Since(began) < timeout && ctx.Err() == nil {
		for name, btr := range pending {
			ready, st, err := m.readStatus(ctx, btr)
			fresh := st.IssuedAt != nil && !st.IssuedAt.Time.Before(since.Truncate(time.Second))
			if err == nil && ready.Status == metav1.ConditionTrue && st.FailedAttempts == 0 && fresh {
				if recovered != nil {
					recovered[name] = time.Since(began)
				}
				delete(pending, name)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name := range pending {
		if recovered != nil {
			recovered[name] = -1
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%d request(s) not Ready with a new token within %s", len(pending), timeout)
	}
	return nil
}

// callsBetween counts bank's token calls in [from, to), the attempts they make (calls in
// quick succession are one), and the shortest gap between attempts.
func callsBetween(w *world, b providers.Name, from, to time.Time) (calls, attempts int, minGap time.Duration) {
	var last time.Time
	for _, c := range w.bank.Calls(b) {
		if c.At.Before(from) || !c.At.Before(to) {
			continue
		}
		calls++
		if !last.IsZero() && c.At.Sub(last) < sameAttempt {
			last = c.At
			continue
		}
		if attempts > 0 && (minGap == 0 || c.At.Sub(last) < minGap) {
			minGap = c.At.Sub(last)
		}
		attempts++
		last = c.At
	}
	return calls, attempts, minGap
}

// bankRevokesOnRefresh says bank revokes the access token a refresh replaces the moment it
// answers: a fault that spoils that answer leaves the held token refused by the bank
// itself, not removed by the operator.
func bankRevokesOnRefresh(b providers.Name) bool { return b == providers.Paymob }

// check fails the cell when the operator lost the token, hid the failure, retried faster
// than its backoff or Retry-After allow, or did not recover.
func (m *faultMatrix) check(fc faultCase, c *matrixCell) {
	where := fmt.Sprintf("fault matrix: %s at %s", c.fault, c.bankName)
	refusedByBank := c.longestRefused > time.Second
	switch {
	case c.emptied > 0:
		m.failf("%s: the output Secret was emptied or deleted (%d reads)", where, c.emptied)
	case refusedByBank && !bankRevokesOnRefresh(c.bankName):
		m.failf("%s: the output Secret held a token the bank refused for %s", where, roundDuration(c.longestRefused))
	case c.readyFalse && !refusedByBank:
		m.failf("%s: Ready went False while the held token was still accepted (reasons %v)", where, c.reasons)
	}
	// A renewal fell due during the fault: it either worked or status must say it failed.
	if !c.renewedDuringFault && !c.failedSeen {
		m.failf("%s: no new token, yet Ready stayed TokenIssued with no failed attempt", where)
	}
	if c.failedSeen && !slices.ContainsFunc(c.reasons, func(r string) bool { return strings.Contains(r, "(") }) {
		m.failf("%s: Ready never named the failure (reasons %v)", where, c.reasons)
	}
	// Attempts are retries only when no renewal got through; otherwise they are renewals.
	retries := !c.serverWide && !c.renewedDuringFault
	wantGap := max(minBackoff, fc.retryAfter-time.Second)
	if retries && c.attempts > 1 && c.minGap < wantGap {
		m.failf("%s: attempts %s apart, under the %s that backoff and Retry-After allow", where, roundDuration(c.minGap), wantGap)
	}
	if most := 1 + int(m.window/minBackoff); retries && c.attempts > most {
		m.failf("%s: %d attempts in %s, over the %d backoff allows", where, c.attempts, m.window, most)
	}
	switch {
	case fc.permanent && c.stalled && c.attempts > 1:
		m.failf("%s: %d attempts after a failure it judged permanent", where, c.attempts)
	case !c.recoveredOK && c.stalled && fc.permanent:
		m.failf("%s: no new token within %s of the credentials' fix", where, matrixRecovery)
	case !c.recoveredOK && c.stalled:
		m.failf("%s: Stalled during the fault (judged permanent: no retry until the spec or credentials change), "+
			"so no new token within %s of the fault's end; the held token will expire", where, matrixRecovery)
	case !c.recoveredOK:
		m.failf("%s: not Ready with a new token within %s of the fault's end", where, matrixRecovery)
	}
}

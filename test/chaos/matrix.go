package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

const matrixNamespace = "chaos-faults"

const (
	// Tokens live a minute and are renewed 55s before they expire: a renewal falls due
	// every five seconds, so each fault meets one at once, and the held token stays valid
	// through the fault and its retries.
	matrixTokenLifetime = time.Minute
	matrixRenewBefore   = 55 * time.Second
	// matrixRequestTimeout is the manager's token call timeout, for the timeout and
	// 1 byte/s faults to end sooner than its 30s default.
	matrixRequestTimeout = 3 * time.Second
	// matrixRetryAfter is the 429 fault's Retry-After.
	matrixRetryAfter = 8 * time.Second
	// matrixRecovery is how long after a fault is cleared every bank must hold a new token:
	// the third retry comes 20s (+20%) after the second.
	matrixRecovery = 45 * time.Second
)

// faultCase is one row group of the matrix: how to turn a fault on and off at a bank.
type faultCase struct {
	name string
	set  func(s *sandbox.Server, b providers.Name, on bool) error
	// retryAfter is the wait the bank asks for, when it asks.
	retryAfter time.Duration
	// serverWide faults are on for every bank at once (TLS): calls cannot be told apart.
	serverWide bool
	// permanent faults stall a request by design (bad credentials): it waits for a change
	// of its inputs, so the fault is followed by the user's fix, new credentials.
	permanent bool
}

func bankFault(f sandbox.Fault) faultCase {
	return faultCase{name: f.String(), set: func(s *sandbox.Server, b providers.Name, on bool) error {
		s.SetFault(b, map[bool]sandbox.Fault{true: f, false: sandbox.NoFault}[on])
		return nil
	}}
}

func tlsFault(f sandbox.TLSFault) faultCase {
	return faultCase{name: f.String(), serverWide: true, set: func(s *sandbox.Server, _ providers.Name, on bool) error {
		return s.SetTLSFault(map[bool]sandbox.TLSFault{true: f, false: sandbox.NoTLSFault}[on])
	}}
}

// allFaults are the twelve faults of the matrix, in the order the report lists them.
func allFaults() []faultCase {
	rateLimited := faultCase{name: fmt.Sprintf("429 Retry-After %s", matrixRetryAfter), retryAfter: matrixRetryAfter,
		set: func(s *sandbox.Server, b providers.Name, on bool) error {
			s.SetRateLimited(b, map[bool]time.Duration{true: matrixRetryAfter}[on])
			return nil
		}}
	badCredentials := bankFault(sandbox.FaultInvalidGrantOnPrimary)
	badCredentials.permanent = true
	return []faultCase{
		bankFault(sandbox.FaultServerError), rateLimited, bankFault(sandbox.FaultTimeout),
		bankFault(sandbox.FaultResetMidBody), bankFault(sandbox.FaultGatewayHTMLPage), bankFault(sandbox.FaultTruncatedJSON),
		bankFault(sandbox.FaultHugeBody), tlsFault(sandbox.TLSFaultUnknownCA), tlsFault(sandbox.TLSFaultExpiredCertificate),
		bankFault(sandbox.FaultInvalidGrantOnRefresh), badCredentials, bankFault(sandbox.FaultOneBytePerSecond),
	}
}

// faultMatrix is scenario 4: each fault on at every bank while renewals fall due, the
// status and the calls watched for a while, then the fault cleared and the recovery timed.
type faultMatrix struct {
	w      *world
	banks  []providers.Name
	faults []faultCase
	window time.Duration

	requests []*tokensv1alpha1.BankTokenRequest
	manager  *harness.ManagerProcess
	before   map[providers.Name]bankCounts
	checkLog
}

func (m *faultMatrix) run(ctx context.Context) ([]matrixCell, []string) {
	if err := m.setUp(ctx); err != nil {
		return nil, []string{"fault matrix: setting up: " + err.Error()}
	}
	var cells []matrixCell
	for i, fc := range m.faults {
		if ctx.Err() != nil {
			break
		}
		logf("fault matrix: %s at %d banks", fc.name, len(m.banks))
		if err := m.freshRequests(ctx, i+1); err != nil {
			m.failf("fault matrix: %s: creating its requests: %v", fc.name, err)
			break
		}
		cells = append(cells, m.runFault(ctx, fc)...)
	}
	for _, b := range m.banks {
		if reuses := countsAt(m.w, b).since(m.before[b]).reuses; reuses > 0 {
			m.failf("fault matrix: %s received %d spent refresh token(s) again", b, reuses)
		}
	}
	if err := m.manager.Stop(30 * time.Second); err != nil {
		m.failf("fault matrix: stopping the manager: %v", err)
	}
	return cells, m.failures
}

func (m *faultMatrix) setUp(ctx context.Context) error {
	if err := m.w.createNamespace(ctx, matrixNamespace); err != nil {
		return err
	}
	m.before = map[providers.Name]bankCounts{}
	for _, b := range m.banks {
		m.w.bank.SetLifetime(b, matrixTokenLifetime)
		m.before[b] = countsAt(m.w, b)
	}
	var err error
	m.manager, err = m.w.startManager("faults", "--watch-namespaces="+matrixNamespace,
		"--token-request-timeout="+matrixRequestTimeout.String())
	if err != nil {
		return err
	}
	return m.manager.WaitStarted(60 * time.Second)
}

// freshRequests replaces the requests with new ones for fault number n, so that what one
// fault leaves behind (a Stalled request, a spent grant) does not spill into the next.
func (m *faultMatrix) freshRequests(ctx context.Context, n int) error {
	for _, btr := range m.requests {
		if err := m.w.cp.Client.Delete(ctx, btr); err != nil {
			return err
		}
	}
	m.requests = nil
	for _, b := range m.banks {
		btr, err := m.w.applyRequest(ctx, matrixNamespace, b, func(btr *tokensv1alpha1.BankTokenRequest) {
			renewingBefore(matrixRenewBefore)(btr)
			btr.Name = fmt.Sprintf("%s-%d", btr.Name, n)
		})
		if err != nil {
			return err
		}
		m.requests = append(m.requests, btr)
	}
	return nil
}

// fixCredentials is what a user does about a refused primary grant: the bank issues a
// new client secret and the credentials Secret gets it.
func (m *faultMatrix) fixCredentials(ctx context.Context) {
	for _, btr := range m.requests {
		m.w.bank.RotateClientSecret(providers.Name(btr.Spec.Provider))
		if err := harness.CreateOrUpdate(ctx, m.w.cp.Client, harness.CredentialsSecret(m.w.bank, btr)); err != nil {
			m.failf("fault matrix: %s: new credentials: %v", btr.Name, err)
		}
	}
}

// readStatus reads btr's Ready condition and status.
func (m *faultMatrix) readStatus(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (metav1.Condition, tokensv1alpha1.BankTokenRequestStatus, error) {
	st, ready, err := harness.ReadStatus(ctx, m.w.cp.Client, btr)
	return ready, st, err
}

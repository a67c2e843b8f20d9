package controller

import (
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// A renewal never cuts a workload off: a workload reads the output Secret workloadLag late
// (as a mounted volume syncs) and uses the token it holds every 200 ms, through five
// renewals, at every bank, including Paymob, whose refresh revokes the access token it
// was issued with. Meanwhile no bank keeps more than two sessions (live grant chains) for
// the resource's client: the one in use and, for a while, the one it replaced.
var _ = Describe("Rotation", func() {
	It("never cuts off a workload that reads the output Secret late, at any bank", func() {
		clients := map[providers.Name]string{}
		for _, name := range sandbox.Banks() {
			clients[name] = ownClient(name)
		}
		ns := newNamespace()
		workloads := map[providers.Name]*laggingWorkload{}
		for _, name := range sandbox.Banks() {
			bank.SetLifetime(name, 8*time.Second)
			workloads[name] = &laggingWorkload{bank: name, clientID: clients[name], btr: applyBank(ns, name)}
		}
		DeferCleanup(func() {
			for _, name := range sandbox.Banks() {
				bank.SetLifetime(name, time.Hour)
			}
		})
		for _, w := range workloads {
			eventuallyReady(w.btr, tokensv1alpha1.ReasonTokenIssued)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range workloads {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				w.run(done)
			}()
		}
		Eventually(func() int {
			fewest := 1 << 30
			for _, w := range workloads {
				fewest = min(fewest, w.renewalsSeen())
			}
			return fewest
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(BeNumerically(">=", 5))
		close(done)
		wg.Wait()
		for name, w := range workloads {
			GinkgoWriter.Printf("rotation: %s: %d renewals, %d uses of a token read %s late, %d refused, at most %d live grants\n",
				name, w.renewalsSeen(), w.uses, workloadLag, w.refused, w.mostLiveGrants)
			Expect(w.refused).To(BeZero(), "%s refused a token a workload still held", name)
			Expect(w.mostLiveGrants).To(BeNumerically("<=", 2), "%s kept more sessions than the grant in use and the one it replaced", name)
		}
	})
})

// laggingWorkload sees the output Secret workloadLag late and uses the token it holds;
// each time, it also counts the grants the bank keeps live for the resource's client.
type laggingWorkload struct {
	bank     providers.Name
	clientID string
	btr      *tokensv1alpha1.BankTokenRequest

	mu             sync.Mutex
	seen           []observedToken
	uses           int
	refused        int
	mostLiveGrants int
}

type observedToken struct {
	at    time.Time
	token string
}

func (w *laggingWorkload) run(done <-chan struct{}) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			// The clock is read, not taken from the tick: a tick delivered late on a busy
			// machine would judge a token the workload held long ago against the bank now.
			w.observe(time.Now(), accessTokenIn(outputSecret(w.btr)))
			if held := w.heldAt(time.Now().Add(-workloadLag)); held != "" {
				w.mu.Lock()
				w.uses++
				if !bank.AccessTokenValid(w.bank, held) {
					w.refused++
				}
				w.mostLiveGrants = max(w.mostLiveGrants, bank.LiveGrants(w.bank, w.clientID))
				w.mu.Unlock()
			}
		}
	}
}

func (w *laggingWorkload) observe(at time.Time, token string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.seen); n == 0 || w.seen[n-1].token != token {
		w.seen = append(w.seen, observedToken{at, token})
	}
}

// heldAt is the token the Secret held at t, "" before the first observation.
func (w *laggingWorkload) heldAt(t time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	held := ""
	for _, o := range w.seen {
		if o.at.After(t) {
			break
		}
		held = o.token
	}
	return held
}

func (w *laggingWorkload) renewalsSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return max(0, len(w.seen)-1)
}

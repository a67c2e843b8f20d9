package controller

import (
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// readinessWatch samples a resource's conditions every 100 ms and keeps every sample in
// which Ready was not True or Stalled was present.
type readinessWatch struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	bad  []string
}

func watchReadiness(btr *tokensv1alpha1.BankTokenRequest) *readinessWatch {
	w := &readinessWatch{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer w.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
				w.sample(btr)
			}
		}
	}()
	DeferCleanup(w.stop)
	return w
}

func (w *readinessWatch) sample(btr *tokensv1alpha1.BankTokenRequest) {
	current := &tokensv1alpha1.BankTokenRequest{}
	if err := k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(btr), current); err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ready := meta.FindStatusCondition(current.Status.Conditions, tokensv1alpha1.ConditionReady); ready == nil || ready.Status != metav1.ConditionTrue {
		w.bad = append(w.bad, "Ready not True: "+conditionSummary(ready))
	}
	if stalled := meta.FindStatusCondition(current.Status.Conditions, tokensv1alpha1.ConditionStalled); stalled != nil && stalled.Status == metav1.ConditionTrue {
		w.bad = append(w.bad, "Stalled: "+conditionSummary(stalled))
	}
}

func conditionSummary(c *metav1.Condition) string {
	if c == nil {
		return "absent"
	}
	return string(c.Status) + " " + c.Reason + ": " + c.Message
}

// stop ends the sampling (once; later calls only read) and returns what went wrong.
func (w *readinessWatch) stop() []string {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.bad)
}

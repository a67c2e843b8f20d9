package callbudget

import (
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Key names a connection: its kind (BankConnection or ClusterBankConnection), its namespace
// ("" for a ClusterBankConnection) and its name. It is also the connection's metric labels.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// Limits are a connection's budget: at most Calls token calls in any window of Interval.
type Limits struct {
	Calls    int
	Interval time.Duration
}

// defaultInterval is the API's default interval as a duration; the API states it as text.
var defaultInterval = mustParseDuration(tokensv1alpha1.DefaultCallBudgetInterval)

// DefaultLimits are the API's defaults: 60 calls a minute.
func DefaultLimits() Limits {
	return Limits{Calls: tokensv1alpha1.DefaultCallBudgetCalls, Interval: defaultInterval}
}

// LimitsOf reads a connection's spec.callBudget, defaulting what is absent as the API does.
func LimitsOf(budget *tokensv1alpha1.CallBudget) Limits {
	limits := DefaultLimits()
	if budget == nil {
		return limits
	}
	if budget.Calls != nil {
		limits.Calls = int(*budget.Calls)
	}
	if budget.Interval != nil {
		limits.Interval = budget.Interval.Duration
	}
	return limits.valid()
}

// valid replaces what the CRD's validation refuses (no calls, no interval) by the defaults,
// so that an object older than the validation cannot open the budget wide or divide by zero.
func (l Limits) valid() Limits {
	if l.Calls < 1 {
		l.Calls = tokensv1alpha1.DefaultCallBudgetCalls
	}
	if l.Interval <= 0 {
		l.Interval = defaultInterval
	}
	return l
}

func mustParseDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic("callbudget: the API's default interval " + s + " is not a duration")
	}
	return d
}

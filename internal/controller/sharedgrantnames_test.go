package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Every consumer finds its holder by name alone: the same connection and scope values, in
// any order or repeated, name the same holder; another kind, connection or scope, another.
func TestSharedGrantHolderNameIsOnePerConnectionAndScope(t *testing.T) {
	cluster, namespaced := tokensv1alpha1.KindClusterBankConnection, tokensv1alpha1.KindBankConnection
	same := sharedGrantHolderName(cluster, "paymob", "read write")
	for _, scope := range []string{"write read", " read  write ", "read write read"} {
		if got := sharedGrantHolderName(cluster, "paymob", scope); got != same {
			t.Errorf("scope %q names holder %s, want %s (the scope of %q)", scope, got, same, "read write")
		}
	}
	others := map[string]string{
		"another scope":      sharedGrantHolderName(cluster, "paymob", "read"),
		"another connection": sharedGrantHolderName(cluster, "paymob-2", "read write"),
		"another kind":       sharedGrantHolderName(namespaced, "paymob", "read write"),
	}
	for what, name := range others {
		if name == same {
			t.Errorf("%s names the same holder %s", what, name)
		}
	}
}

// A holder's name is its output Secret's too, and a label value carries it (cut): it must
// be a valid object name, and stay readable, whatever the connection's name.
func TestSharedGrantHolderNameIsAValidNameForAnyConnection(t *testing.T) {
	for _, connection := range []string{"p", "paymob.payouts", strings.Repeat("a", 253), strings.Repeat("ab-", 13) + "c." + strings.Repeat("d", 200)} {
		name := sharedGrantHolderName(tokensv1alpha1.KindClusterBankConnection, connection, "accounts")
		if problems := validation.IsDNS1123Subdomain(name); len(problems) > 0 || len(name) > 63 {
			t.Errorf("connection %.20s...: holder name %q: %v (length %d)", connection, name, problems, len(name))
		}
		if problems := validation.IsValidLabelValue(connectionLabelValue(tokensv1alpha1.KindClusterBankConnection, connection)); len(problems) > 0 {
			t.Errorf("connection %.20s...: connection label: %v", connection, problems)
		}
	}
}

// A time rounded up to a whole second is never earlier than it was: a delay counted from it
// never ends early.
func TestWholeSecondAfterNeverRoundsDown(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct{ in, want time.Time }{
		{base, base},
		{base.Add(time.Nanosecond), base.Add(time.Second)},
		{base.Add(999 * time.Millisecond), base.Add(time.Second)},
	} {
		if got := wholeSecondAfter(tc.in); !got.Equal(tc.want) {
			t.Errorf("wholeSecondAfter(%s) = %s, want %s", tc.in.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano), tc.want.Format(time.RFC3339Nano))
		}
	}
}

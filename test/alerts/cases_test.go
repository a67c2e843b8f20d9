package alerts

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// resource is one series of a per-BankTokenRequest gauge, labelled as the manager labels it
// (plus the target labels a scrape adds).
func resource(metric, namespace, name, values string, extra ...string) string {
	labelSet := fmt.Sprintf(`namespace=%q, name=%q, provider="Paymob", job="bank-token-operator", instance="10.0.0.7:8080"`, namespace, name)
	for _, label := range extra {
		labelSet += ", " + label
	}
	return fmt.Sprintf("  %s{%s} %s\n", metric, labelSet, values)
}

// connection is one series of a per-connection metric, labelled as the call budget labels
// it: a ClusterBankConnection has no namespace, so the label is absent.
func connection(metric, kind, namespace, name, values string) string {
	labelSet := fmt.Sprintf(`kind=%q, connection=%q, job="bank-token-operator", instance="10.0.0.7:8080"`, kind, name)
	if namespace != "" {
		labelSet += fmt.Sprintf(", namespace=%q", namespace)
	}
	return fmt.Sprintf("  %s{%s} %s\n", metric, labelSet, values)
}

func upstream(provider, result, values string) string {
	return fmt.Sprintf("  banktoken_upstream_requests_total{provider=%q, grant=\"password\", result=%q, job=\"bank-token-operator\"} %s\n", provider, result, values)
}

// latency is the classic histogram of token call durations for a provider whose calls all
// take about took seconds, one call a minute over an hour.
func latency(provider string, took float64) string {
	var series strings.Builder
	for bound := 0.01; bound < 30; bound *= 2 {
		rate := 0
		if took <= bound {
			rate = 1
		}
		fmt.Fprintf(&series, "  banktoken_upstream_request_duration_seconds_bucket{provider=%q, le=\"%g\"} 0+%dx60\n", provider, bound, rate)
	}
	fmt.Fprintf(&series, "  banktoken_upstream_request_duration_seconds_bucket{provider=%q, le=\"+Inf\"} 0+1x60\n", provider)
	return series.String()
}

func reconciles(result, values string) string {
	return fmt.Sprintf("  controller_runtime_reconcile_total{controller=\"banktokenrequest\", result=%q} %s\n", result, values)
}

func reconcileErrors(values string) string {
	return fmt.Sprintf("  controller_runtime_reconcile_errors_total{controller=\"banktokenrequest\"} %s\n", values)
}

type alertCase struct {
	name   string
	alert  string
	series string
	at     time.Duration
	want   []string // alertKeys of the alerts firing at `at`
}

// A token of 30 minutes, issued at 0, due for renewal at 20m (1200 s).
var (
	thirtyMinuteToken   = resource("banktoken_token_expiry_timestamp_seconds", "payments", "paymob", "1800+0x60")
	renewalAt20m        = resource("banktoken_token_renewal_timestamp_seconds", "payments", "paymob", "1200+0x60")
	readyState          = resource("banktoken_token_state", "payments", "paymob", "1+0x60", `state="Ready"`)
	failingFrom20m      = resource("banktoken_token_failed_attempts", "payments", "paymob", "0+0x19 1+1x40")
	retriesEveryMinute  = resource("banktoken_token_renewal_timestamp_seconds", "payments", "paymob", "1200+0x19 1260+60x40")
	neverFailed         = resource("banktoken_token_failed_attempts", "payments", "paymob", "0+0x60")
	stalledState        = resource("banktoken_token_state", "payments", "paymob", "1+0x60", `state="Stalled"`)
	suspendedState      = resource("banktoken_token_state", "payments", "paymob", "1+0x60", `state="Suspended"`)
	hourTokenFailingNow = resource("banktoken_token_expiry_timestamp_seconds", "payments", "paymob", "7200+0x60")

	// A namespace's connection paused by the bank from 5m on; a cluster connection's two-minute pause.
	pausedFrom5m        = connection("banktoken_connection_paused", "BankConnection", "payments", "paymob", "0+0x4 1+0x55")
	clusterPausedFrom5m = connection("banktoken_connection_paused", "ClusterBankConnection", "", "banfico-shared", "0+0x4 1+0x55")
	pausedTwoMinutes    = connection("banktoken_connection_paused", "ClusterBankConnection", "", "banfico-shared", "0+0x4 1+0x1 0+0x53")
	// A namespace's connection not Ready from 5m on; a cluster connection not Ready while the
	// bank pauses it; a connection not Ready for two minutes.
	notReadyFrom5m         = connection("banktoken_connection_ready", "BankConnection", "payments", "paymob", "1+0x4 0+0x55")
	clusterNotReadyFrom5m  = connection("banktoken_connection_ready", "ClusterBankConnection", "", "banfico-shared", "1+0x4 0+0x55")
	clusterNotReadyTwoMins = connection("banktoken_connection_ready", "ClusterBankConnection", "", "banfico-shared", "1+0x4 0+0x1 1+0x53")
	clusterPausedNotReady  = clusterNotReadyFrom5m + clusterPausedFrom5m
	// Calls held back by the budget every minute, or for five minutes only.
	throttledEveryMinute = connection("banktoken_connection_throttled_total", "ClusterBankConnection", "", "banfico-shared", "0+1x60")
	throttledFiveMinutes = connection("banktoken_connection_throttled_total", "BankConnection", "payments", "paymob", "0+1x5 5+0x55")
)

var alertCases = []alertCase{
	{"renewal failing as expiry nears pages once the hold has passed", "BankTokenExpiringWithoutRenewal",
		thirtyMinuteToken + retriesEveryMinute + failingFrom20m + readyState, 23 * time.Minute, []string{"payments/paymob/Paymob"}},
	{"renewal failing as expiry nears waits out its hold", "BankTokenExpiringWithoutRenewal",
		thirtyMinuteToken + retriesEveryMinute + failingFrom20m + readyState, 21 * time.Minute, nil},
	{"a short-lived token renewed on time never pages", "BankTokenExpiringWithoutRenewal",
		resource("banktoken_token_expiry_timestamp_seconds", "payments", "paymob", "600+0x6 1020+0x6 1440+0x6 1860+0x6 2280+0x6") +
			resource("banktoken_token_renewal_timestamp_seconds", "payments", "paymob", "400+0x6 820+0x6 1240+0x6 1660+0x6 2080+0x6") +
			neverFailed + readyState, 30 * time.Minute, nil},
	{"a Stalled resource whose token ran out pages", "BankTokenExpiringWithoutRenewal",
		thirtyMinuteToken + neverFailed + stalledState, 40 * time.Minute, []string{"payments/paymob/Paymob"}},
	{"a suspended resource's expiry does not page", "BankTokenExpiringWithoutRenewal",
		thirtyMinuteToken + neverFailed + suspendedState, 40 * time.Minute, nil},
	{"a renewal overdue without failures pages before expiry", "BankTokenExpiringWithoutRenewal",
		thirtyMinuteToken + renewalAt20m + neverFailed + readyState, 25 * time.Minute, []string{"payments/paymob/Paymob"}},

	{"failing for longer than 30 minutes with a working token warns", "BankTokenRenewalFailing",
		hourTokenFailingNow + failingFrom20m + readyState, 51 * time.Minute, []string{"payments/paymob/Paymob"}},
	{"failing for less than 30 minutes does not warn", "BankTokenRenewalFailing",
		hourTokenFailingNow + failingFrom20m + readyState, 49 * time.Minute, nil},
	{"a recovery resets the 30 minutes", "BankTokenRenewalFailing",
		hourTokenFailingNow + resource("banktoken_token_failed_attempts", "payments", "paymob", "1+1x20 0+0x5 1+1x30") + readyState, 50 * time.Minute, nil},
	{"failing with an expired token is the expiry alert's, not this one's", "BankTokenRenewalFailing",
		thirtyMinuteToken + failingFrom20m + readyState, 55 * time.Minute, nil},
	{"failing while Stalled is the Stalled alert's", "BankTokenRenewalFailing",
		hourTokenFailingNow + failingFrom20m + stalledState, 55 * time.Minute, nil},

	{"Stalled for 5 minutes warns", "BankTokenRequestStalled", stalledState, 6 * time.Minute, []string{"payments/paymob/Paymob"}},
	{"Stalled briefly does not", "BankTokenRequestStalled", stalledState, 4 * time.Minute, nil},
	{"Ready is not Stalled", "BankTokenRequestStalled", readyState, 30 * time.Minute, nil},

	{"a renewal 10 minutes overdue for 5 minutes pages", "BankTokenRenewalOverdue", renewalAt20m, 36 * time.Minute, []string{"payments/paymob/Paymob"}},
	{"a renewal overdue by less does not", "BankTokenRenewalOverdue", renewalAt20m, 34 * time.Minute, nil},
	{"retries planned in the future are not overdue", "BankTokenRenewalOverdue", retriesEveryMinute, 60 * time.Minute, nil},

	{"a bank failing a third of its calls warns", "BankTokenEndpointErrors",
		upstream("Paymob", "success", "0+2x60") + upstream("Paymob", "EndpointUnreachable", "0+1x60") +
			upstream("Mbanq", "success", "0+20x60") + upstream("Mbanq", "RateLimited", "0+1x60"), 50 * time.Minute, []string{"Paymob"}},
	{"two failures in few calls are not a rate", "BankTokenEndpointErrors",
		upstream("Paymob", "success", "0+0x60") + upstream("Paymob", "InvalidCredentials", "0+0x30 1+0x29"), 50 * time.Minute, nil},

	{"a bank answering in 8 seconds warns", "BankTokenEndpointSlow", latency("Banfico", 8) + latency("Mbanq", 0.1), 50 * time.Minute, []string{"Banfico"}},
	{"a bank answering in 2 seconds does not", "BankTokenEndpointSlow", latency("Banfico", 2), 50 * time.Minute, nil},

	{"a pause lasting more than 5 minutes warns", "BankConnectionPaused", pausedFrom5m, 11 * time.Minute, []string{"BankConnection/payments/paymob"}},
	{"a cluster connection's pause warns too", "BankConnectionPaused", clusterPausedFrom5m, 11 * time.Minute, []string{"ClusterBankConnection/banfico-shared"}},
	{"a pause waits out its 5 minutes", "BankConnectionPaused", pausedFrom5m, 8 * time.Minute, nil},
	{"a two-minute pause does not warn", "BankConnectionPaused", pausedTwoMinutes, 11 * time.Minute, nil},

	{"a connection not Ready for 10 minutes warns", "BankConnectionNotReady", notReadyFrom5m, 16 * time.Minute, []string{"BankConnection/payments/paymob"}},
	{"a cluster connection not Ready warns too", "BankConnectionNotReady", clusterNotReadyFrom5m, 16 * time.Minute, []string{"ClusterBankConnection/banfico-shared"}},
	{"not Ready waits out its 10 minutes", "BankConnectionNotReady", notReadyFrom5m, 14 * time.Minute, nil},
	{"not Ready for two minutes does not warn", "BankConnectionNotReady", clusterNotReadyTwoMins, 16 * time.Minute, nil},
	{"not Ready because the bank paused it is the pause alert's", "BankConnectionNotReady", clusterPausedNotReady, 16 * time.Minute, nil},

	{"calls held back by the budget for 15 minutes warn", "BankConnectionBudgetTooSmall",
		throttledEveryMinute, 20 * time.Minute, []string{"ClusterBankConnection/banfico-shared"}},
	{"calls held back for less than 15 minutes do not", "BankConnectionBudgetTooSmall", throttledEveryMinute, 14 * time.Minute, nil},
	{"a budget that stopped holding calls back does not", "BankConnectionBudgetTooSmall", throttledFiveMinutes, 30 * time.Minute, nil},

	{"every reconcile failing for 15 minutes pages", "BankTokenOperatorReconcileFailing",
		reconciles("success", "40+0x60") + reconciles("error", "0+3x60") + reconcileErrors("0+3x60"), 35 * time.Minute, []string{""}},
	{"some reconciles failing among successes does not", "BankTokenOperatorReconcileFailing",
		reconciles("success", "0+1x60") + reconciles("error", "0+3x60") + reconcileErrors("0+3x60"), 35 * time.Minute, nil},

	{"no manager reporting for 10 minutes pages", "BankTokenOperatorAbsent", readyState, 11 * time.Minute, []string{""}},
	{"a manager reporting does not", "BankTokenOperatorAbsent", reconciles("success", "0+1x60"), 30 * time.Minute, nil},
}

func TestAlertRulesFireWhenAndOnlyWhenTheirCaseHolds(t *testing.T) {
	rules := loadAlertRules(t)
	for _, c := range alertCases {
		t.Run(c.alert+": "+c.name, func(t *testing.T) {
			rule, ok := rules[c.alert]
			if !ok {
				t.Fatalf("no alert %s in %s", c.alert, rulesFile)
			}
			got := alertKeys(firingAlerts(t, rule, c.series, c.at))
			want := c.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("firing at %s: %q, want %q", c.at, got, want)
			}
		})
	}
}

// Each alert is shown firing and shown quiet by at least one case.
func TestEveryAlertHasAFiringAndAQuietCase(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, c := range alertCases {
		if len(c.want) > 0 {
			fires[c.alert] = true
		} else {
			quiet[c.alert] = true
		}
	}
	for name := range loadAlertRules(t) {
		if !fires[name] || !quiet[name] {
			t.Errorf("%s: firing case %v, quiet case %v", name, fires[name], quiet[name])
		}
	}
}

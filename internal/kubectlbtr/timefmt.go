package kubectlbtr

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// clockNow is the time relative times are measured from; a variable so tests can fix it.
var clockNow = time.Now

// localAndRelative is a time as the on-call engineer reads it: local wall time and how far
// from now, e.g. "2026-07-21 14:03:05 CEST (in 12m)".
func localAndRelative(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST") + " (" + relative(t.Time, now) + ")"
}

// relative is "in 12m" or "3h ago".
func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + duration.HumanDuration(t.Sub(now))
	}
	return duration.HumanDuration(now.Sub(t)) + " ago"
}

// until is how long until t ("12m", "-3m" once past), or "-" without one.
func until(t *metav1.Time, now time.Time) string {
	switch {
	case t == nil:
		return "-"
	case t.Time.Before(now):
		return "-" + duration.HumanDuration(now.Sub(t.Time))
	}
	return duration.HumanDuration(t.Sub(now))
}

// since is how long ago t was ("4m ago"), or "-" without one.
func since(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return relative(t.Time, now)
}

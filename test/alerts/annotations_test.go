package alerts

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// An alert's text names what it is about (the resource, or the bank) and says where to look;
// it never carries a value: neither the expression's value nor anything read from a Secret.
func TestAlertTextNamesTheResourceAndNoValue(t *testing.T) {
	rules := loadAlertRules(t)
	for _, c := range alertCases {
		if len(c.want) == 0 {
			continue
		}
		for _, alert := range firingAlerts(t, rules[c.alert], c.series, c.at) {
			for _, key := range []string{"summary", "description"} {
				text := alert.Annotations.Get(key)
				if text == "" || strings.Contains(text, "<no value>") || strings.Contains(text, "{{") {
					t.Errorf("%s: %s %q is empty or not fully expanded", c.alert, key, text)
				}
				for _, label := range namedIn(key, alert.Labels) {
					if v := alert.Labels.Get(label); v != "" && !strings.Contains(text, v) {
						t.Errorf("%s: %s does not name %s %q: %q", c.alert, key, label, v, text)
					}
				}
			}
		}
	}
	for name, rule := range rules {
		for key, text := range rule.Annotations {
			if strings.Contains(text, "$value") || strings.Contains(text, ".Value") || strings.Contains(text, "query ") {
				t.Errorf("%s: %s uses a value or a query: %q", name, key, text)
			}
		}
	}
}

// namedIn is what an annotation must name: both name the connection (kind, namespace,
// name) when the alert is about one; otherwise the description everything the alert is
// about, the summary the resource (namespace/name), or the bank when it is about a bank.
func namedIn(annotation string, alertLabels labels.Labels) []string {
	switch {
	case alertLabels.Get("connection") != "":
		return []string{"kind", "namespace", "connection"}
	case annotation == "description":
		return []string{"namespace", "name", "provider"}
	case alertLabels.Get("name") != "":
		return []string{"namespace", "name"}
	}
	return []string{"provider"}
}

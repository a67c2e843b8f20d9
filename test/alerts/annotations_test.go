package alerts

import (
	"strings"
	"testing"
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
				for _, label := range namedIn(key, alert.Labels.Get("name") != "") {
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

// namedIn is what an annotation must name: the description everything the alert is about,
// the summary the resource (namespace/name), or the bank when the alert is about a bank.
func namedIn(annotation string, aboutAResource bool) []string {
	switch {
	case annotation == "description":
		return []string{"namespace", "name", "provider"}
	case aboutAResource:
		return []string{"namespace", "name"}
	}
	return []string{"provider"}
}

// Package alerts tests the shipped alert rules (config/prometheus/alerts.yaml) with
// Prometheus's own rule evaluation: series are loaded into Prometheus's test storage in
// promqltest notation and each alerting rule is evaluated, step by step, by rules.AlertingRule,
// as a Prometheus server evaluates it. It is a module of its own so that the main module
// does not depend on Prometheus's server code (hack/check-shared-versions.sh).
package alerts

import (
	"context"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

var rulesFile = filepath.Join("..", "..", "config", "prometheus", "alerts.yaml")

// evaluationInterval is how often the rules are evaluated in these tests (Prometheus's
// default global evaluation_interval is 1m).
const evaluationInterval = time.Minute

var promqlParser = parser.NewParser(promqltest.TestParserOpts)

// loadAlertRules parses the rule file as Prometheus does at startup, strictly.
func loadAlertRules(t *testing.T) map[string]rulefmt.Rule {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promqlParser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	byName := map[string]rulefmt.Rule{}
	for _, group := range groups.Groups {
		for _, rule := range group.Rules {
			if rule.Alert == "" {
				t.Fatalf("%s: recording rule %q: the file holds alerts only", rulesFile, rule.Record)
			}
			byName[rule.Alert] = rule
		}
	}
	return byName
}

// firingAlerts loads series (promqltest "load 1m" notation, time 0 is the Unix epoch), then
// evaluates the rule every evaluationInterval from 0 to at and returns the alerts firing then.
func firingAlerts(t *testing.T, rule rulefmt.Rule, series string, at time.Duration) []*rules.Alert {
	t.Helper()
	expr, err := promqlParser.ParseExpr(rule.Expr)
	if err != nil {
		t.Fatalf("%s: %v", rule.Alert, err)
	}
	alerting := rules.NewAlertingRule(rule.Alert, expr, time.Duration(rule.For), time.Duration(rule.KeepFiringFor),
		labels.FromMap(rule.Labels), labels.FromMap(rule.Annotations), labels.EmptyLabels(), "", false, slog.New(slog.DiscardHandler))
	storage := promqltest.LoadedStorage(t, "load 1m\n"+series)
	query := rules.EngineQueryFunc(promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery), storage)
	for step := time.Duration(0); step <= at; step += evaluationInterval {
		if _, err := alerting.Eval(context.Background(), 0, time.Unix(0, 0).Add(step), query, nil, 0); err != nil {
			t.Fatalf("%s at %s: %v", rule.Alert, step, err)
		}
	}
	var firing []*rules.Alert
	for _, alert := range alerting.ActiveAlerts() {
		if alert.State == rules.StateFiring {
			firing = append(firing, alert)
		}
	}
	return firing
}

// alertKeys names each alert by the labels that say what it is about: a resource
// (namespace/name/provider), a connection (kind/namespace/connection) or a bank (provider).
func alertKeys(alerts []*rules.Alert) []string {
	keys := []string{}
	for _, alert := range alerts {
		var parts []string
		for _, name := range []string{"kind", "namespace", "name", "connection", "provider"} {
			if v := alert.Labels.Get(name); v != "" {
				parts = append(parts, v)
			}
		}
		keys = append(keys, strings.Join(parts, "/"))
	}
	sort.Strings(keys)
	return keys
}

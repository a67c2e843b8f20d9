package alerts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

var dashboardFile = filepath.Join("..", "..", "config", "grafana", "bank-token-operator.json")

// operatorMetricName is the pattern test/install scans the alerts and the dashboard with to
// find the metrics it then looks for in a real manager's scrape; it must match every metric
// an expression selects, or that check would miss one.
var operatorMetricName = regexp.MustCompile(`^(?:banktoken|controller_runtime|workqueue)_[a-z0-9_]+$`)

// grafanaVariables are replaced by what Grafana would substitute, so that Prometheus's
// parser can read the dashboard's queries.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*", "$provider", ".*")

func TestEveryExpressionParsesAndSelectsOnlyOperatorMetrics(t *testing.T) {
	expressions := map[string]string{}
	for name, rule := range loadAlertRules(t) {
		expressions["alert "+name] = rule.Expr
	}
	for title, expr := range dashboardQueries(t) {
		expressions["panel "+title] = grafanaVariables.Replace(expr)
	}
	for where, expr := range expressions {
		parsed, err := promqlParser.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		for _, name := range selectedMetrics(parsed) {
			if !operatorMetricName.MatchString(name) {
				t.Errorf("%s selects %q, which is not an operator metric name", where, name)
			}
		}
	}
}

func selectedMetrics(expr parser.Expr) []string {
	var names []string
	for _, matchers := range parser.ExtractSelectors(expr) {
		for _, m := range matchers {
			if m.Name == labels.MetricName {
				names = append(names, m.Value)
			}
		}
	}
	return names
}

// dashboardQueries are the PromQL of every panel target, by panel title and target.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	for _, panel := range dashboard.Panels {
		for _, target := range panel.Targets {
			queries[panel.Title+" "+target.RefID] = target.Expr
		}
	}
	if len(queries) < 8 {
		t.Fatalf("%s: only %d queries", dashboardFile, len(queries))
	}
	return queries
}

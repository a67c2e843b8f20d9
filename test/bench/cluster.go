package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

// cluster is one local control plane (etcd + kube-apiserver) with the CRD installed, an
// admin client for the bench itself, and a kubeconfig file for the manager process.
type cluster struct {
	*harness.ControlPlane
	metricsHC *http.Client // admin: scrapes the apiserver's /metrics
}

func startCluster(assets, workDir string, clientQPS float32) (*cluster, error) {
	cp, err := harness.StartControlPlane(harness.ControlPlaneOptions{
		AssetsDirectory: assets,
		// The bench's own client creates thousands of objects: no client-side throttling.
		ClientQPS: clientQPS, ClientBurst: int(clientQPS),
		// The manager gets its own identity, an admin one: RBAC is not what is measured here.
		KubeconfigPath: filepath.Join(workDir, fmt.Sprintf("kubeconfig-%d", time.Now().UnixNano())),
		KubeconfigUser: "bench-manager",
	})
	if err != nil {
		return nil, err
	}
	c := &cluster{ControlPlane: cp}
	if c.metricsHC, err = rest.HTTPClientFor(cp.Config); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) stop() {
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: stopping the control plane: %v\n", err)
	}
}

// requestKey is one series of apiserver_request_total, summed over everything but these.
type requestKey struct {
	Verb     string
	Resource string // resource[.group][/subresource]
	Code     string
}

type requestCounts map[requestKey]float64

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrapeRequests reads apiserver_request_total from the apiserver's own /metrics.
func (c *cluster) scrapeRequests(ctx context.Context) (requestCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Config.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.metricsHC.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	out := requestCounts{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(line[:end], -1) {
			labels[m[1]] = m[2]
		}
		res := labels["resource"]
		if g := labels["group"]; g != "" {
			res += "." + g
		}
		if s := labels["subresource"]; s != "" {
			res += "/" + s
		}
		out[requestKey{Verb: labels["verb"], Resource: res, Code: labels["code"]}] += v
	}
	return out, sc.Err()
}

func isWrite(verb string) bool {
	switch verb {
	case "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY":
		return true
	}
	return false
}

// writeDelta is the writes between two scrapes, by "VERB resource", minus the bench's own.
type writeDelta struct {
	ByResource map[string]float64 // the operator's writes: Secrets, BankTokenRequests, Events
	Other      map[string]float64 // everything else (the apiserver's own leases, ...), shown apart
	Failed     map[string]float64 // non-2xx responses among the operator's writes (conflicts, ...)
}

// operatorResource says whether res is one the operator writes (a connection's status
// too, once connections report their use); the apiserver itself writes
// others (its identity Lease every 10 s), which are reported apart, never hidden.
func operatorResource(res string) bool {
	base, _, _ := strings.Cut(res, "/")
	switch base {
	case "secrets", "events", "events.events.k8s.io", "banktokenrequests.tokens.banktoken.io", "configmaps",
		"bankconnections.tokens.banktoken.io", "clusterbankconnections.tokens.banktoken.io":
		return true
	}
	return false
}

func diffWrites(before, after requestCounts, own map[string]float64) writeDelta {
	d := writeDelta{ByResource: map[string]float64{}, Other: map[string]float64{}, Failed: map[string]float64{}}
	for k, v := range after {
		if !isWrite(k.Verb) {
			continue
		}
		delta := v - before[k]
		if delta <= 0 {
			continue
		}
		name := k.Verb + " " + k.Resource
		switch {
		case !operatorResource(k.Resource):
			d.Other[name] += delta
		default:
			d.ByResource[name] += delta
			if !strings.HasPrefix(k.Code, "2") {
				d.Failed[name+" "+k.Code] += delta
			}
		}
	}
	for name, n := range own {
		d.ByResource[name] -= n
		if d.ByResource[name] <= 0 {
			delete(d.ByResource, name)
		}
	}
	return d
}

func (d writeDelta) total() float64 { return sum(d.ByResource) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// format renders "POST secrets 1.00, PATCH banktokenrequests/status 1.00" per divisor.
func formatPer(m map[string]float64, per float64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if per == 1 {
			parts = append(parts, fmt.Sprintf("%s %.0f", shortResource(k), m[k]))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.2f", shortResource(k), m[k]/per))
		}
	}
	return strings.Join(parts, ", ")
}

func shortResource(k string) string {
	k = strings.Replace(k, "clusterbankconnections.tokens.banktoken.io", "cbconn", 1)
	k = strings.Replace(k, "bankconnections.tokens.banktoken.io", "bconn", 1)
	k = strings.Replace(k, "banktokenrequests.tokens.banktoken.io", "btr", 1)
	k = strings.Replace(k, "events.events.k8s.io", "events.k8s.io", 1)
	k = strings.Replace(k, "leases.coordination.k8s.io", "leases", 1)
	return k
}

// requestsBetween counts the requests of one verb on one resource (every response code)
// between two scrapes: the reads, which diffWrites leaves out.
func requestsBetween(before, after requestCounts, verb, resource string) float64 {
	total := 0.0
	for k, v := range after {
		if k.Verb == verb && k.Resource == resource {
			total += v - before[k]
		}
	}
	return total
}

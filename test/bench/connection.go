package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Connection: N requests on one connection against N inline ones. Each set-up runs on its
// own control plane and manager: time to all Ready, then what one renewal round costs in
// bank calls, apiserver writes and manager CPU.

// connectionSetup is one way of giving the N requests their bank client.
type connectionSetup struct {
	key     string                      // as --connection-setups names it
	label   string                      // the report's row
	sharing tokensv1alpha1.GrantSharing // "" for inline requests, which name no connection
	// defaultBudget leaves the connection's call budget at its default (60 a minute), to
	// show it pacing a start of N; the other connections get a budget that never binds.
	defaultBudget bool
}

func (s connectionSetup) inline() bool { return s.sharing == "" }

// connectionSetups are the set-ups --connection-setups may name, in the order they run.
var connectionSetups = []connectionSetup{
	{key: "inline", label: "(a) inline, a credentials Secret each"},
	{key: "per-request", label: "(b) ClusterBankConnection, PerRequest", sharing: tokensv1alpha1.GrantSharingPerRequest},
	{key: "shared", label: "(c) ClusterBankConnection, Shared, one scope", sharing: tokensv1alpha1.GrantSharingShared},
	{key: "per-request-default-budget", label: "(b') ClusterBankConnection, PerRequest, default budget",
		sharing: tokensv1alpha1.GrantSharingPerRequest, defaultBudget: true},
}

// parseConnectionSetups reads --connection-setups, keeping the order of connectionSetups.
func parseConnectionSetups(list string) ([]connectionSetup, error) {
	asked := map[string]bool{}
	for _, key := range strings.Split(list, ",") {
		if key = strings.TrimSpace(key); key == "" {
			continue
		}
		if !slices.ContainsFunc(connectionSetups, func(s connectionSetup) bool { return s.key == key }) {
			return nil, fmt.Errorf("unknown set-up %q in --connection-setups: the set-ups are %s", key, connectionSetupKeys())
		}
		asked[key] = true
	}
	var out []connectionSetup
	for _, s := range connectionSetups {
		if asked[s.key] {
			out = append(out, s)
		}
	}
	return out, nil
}

func connectionSetupKeys() string {
	keys := make([]string, len(connectionSetups))
	for i, s := range connectionSetups {
		keys[i] = s.key
	}
	return strings.Join(keys, ", ")
}

// connectionResult is what one set-up measured.
type connectionResult struct {
	Setup         connectionSetup
	N, Namespaces int
	Err           error
	ReadySeconds  float64 // first create -> every Secret holds a token and every request is Ready
	IssueCalls    int64
	IssueWrites   writeDelta
	IssueCPU      float64
	IssueManager  managerCounts // the manager's reconciles and budget refusals during issuance
	Round         roundResult
	Budget        budgetPacing // the default-budget set-up only
	Load          [2]string
}

func (b *bench) runConnections(ctx context.Context) []connectionResult {
	var out []connectionResult
	for _, setup := range b.connSetups {
		if ctx.Err() != nil {
			break
		}
		out = append(out, b.runConnectionSetup(ctx, setup))
	}
	return out
}

// runConnectionSetup runs one set-up on a control plane of its own, so that nothing of the
// set-up before (grants, Secrets, the manager's caches) is left.
func (b *bench) runConnectionSetup(ctx context.Context, setup connectionSetup) (res connectionResult) {
	res.Setup, res.N, res.Namespaces = setup, b.connN, b.connNamespaces
	res.Load[0] = loadavg()
	defer func() { res.Load[1] = loadavg() }()
	// The default-budget set-up watches a start only: long tokens, or the renewals of the
	// first ones would mix with the issues still waiting for the budget.
	if setup.defaultBudget {
		b.bank.setLifetime(b.tokenLifetime)
	} else {
		b.bank.setLifetime(b.connLifetime)
	}
	defer b.bank.setLifetime(b.tokenLifetime)
	tenants := tenantNamespaces(b.connNamespaces)
	logf("connection %s: %d requests in %d namespaces", setup.key, b.connN, len(tenants))
	run, err := b.prepare(ctx, runSetup{
		otherNamespaces:    append(slices.Clone(tenants), connectionSecretsNamespace),
		observedNamespaces: tenants,
	})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	if res.Err = b.createBankClients(ctx, run.cluster, setup, tenants); res.Err != nil {
		return res
	}
	// Its metrics on a loopback port: reconciles and budget refusals, per round.
	metricsAddress, err := freeLoopbackAddress()
	if err != nil {
		res.Err = err
		return res
	}
	run.manager, res.Err = b.startManager(run.cluster, "connection-"+setup.key,
		append(metricsArgs(metricsAddress), "--cluster-connection-namespace="+connectionSecretsNamespace)...)
	if res.Err != nil {
		return res
	}
	if setup.defaultBudget {
		res.Budget, res.Err = b.measureBudgetPacing(ctx, run, setup, tenants)
		return res
	}
	if res.Err = b.measureConnectionIssuance(ctx, run, setup, tenants, metricsAddress, &res); res.Err != nil {
		return res
	}
	logf("connection %s: all Ready after %.1fs; waiting for %d renewal round(s)", setup.key, res.ReadySeconds, b.connRounds)
	res.Round, res.Err = b.measureRounds(ctx, run, metricsAddress)
	return res
}

// measureConnectionIssuance creates the N requests and measures the time until all are
// Ready, and the calls, writes and CPU that cost.
func (b *bench) measureConnectionIssuance(ctx context.Context, run *benchRun, setup connectionSetup, tenants []string,
	metricsAddress string, res *connectionResult) error {
	before, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	cpuBefore, managerBefore := run.manager.CPUSeconds(), scrapeManagerCounts(ctx, metricsAddress)
	first := time.Now()
	if err := b.createConnectionRequests(ctx, run.cluster, setup, tenants); err != nil {
		return err
	}
	allReady, err := run.obs.waitAll(ctx, names(b.connN), b.timeout)
	if err != nil {
		return err
	}
	res.ReadySeconds = allReady.Sub(first).Seconds()
	own := map[string]float64{"POST banktokenrequests.tokens.banktoken.io": float64(b.connN)}
	if res.IssueWrites, err = settledWrites(ctx, run.cluster, before.requests, own, 15*time.Second); err != nil {
		return err
	}
	res.IssueCalls = b.bank.calls.Load() - before.calls
	res.IssueCPU = run.manager.CPUSeconds() - cpuBefore
	res.IssueManager = scrapeManagerCounts(ctx, metricsAddress).since(managerBefore)
	return nil
}

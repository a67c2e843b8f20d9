package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

// managerStopTimeout is how long a measured manager gets to shut down before it is killed.
const managerStopTimeout = 15 * time.Second

// runSetup says what a run starts with beyond its own control plane and benchNamespace.
type runSetup struct {
	credentials        int      // credentials Secrets in benchNamespace
	otherNamespaces    []string // more namespaces to create
	observedNamespaces []string // where the observer watches the requests; default benchNamespace
	managerLabel       string   // when set, a manager runs, logging to manager-<label>.log
	managerArgs        []string // more flags for that manager
	history            bool     // the observer keeps every token and renewal plan it sees
}

// benchRun is what every run starts with: its own control plane, the namespaces, the
// credentials Secrets, an observer of the requests in benchNamespace and, if asked, the
// manager under test.
type benchRun struct {
	cluster *cluster
	obs     *observer
	stopObs context.CancelFunc
	manager *harness.ManagerProcess
}

func (b *bench) prepare(ctx context.Context, setup runSetup) (*benchRun, error) {
	c, err := startCluster(b.assets, b.workDir, b.clientQPS)
	if err != nil {
		return nil, err
	}
	obsCtx, stopObs := context.WithCancel(ctx)
	obs := newObserver()
	if setup.history {
		obs = newHistoryObserver()
	}
	run := &benchRun{cluster: c, obs: obs, stopObs: stopObs}
	for _, ns := range append([]string{benchNamespace}, setup.otherNamespaces...) {
		if err := createNamespace(ctx, c, ns); err != nil {
			run.close()
			return nil, err
		}
	}
	if err := b.createCredentials(ctx, c, benchNamespace, setup.credentials); err != nil {
		run.close()
		return nil, err
	}
	observed := setup.observedNamespaces
	if len(observed) == 0 {
		observed = []string{benchNamespace}
	}
	if err := run.obs.start(obsCtx, c, observed...); err != nil {
		run.close()
		return nil, err
	}
	if setup.managerLabel != "" {
		if run.manager, err = b.startManager(c, setup.managerLabel, setup.managerArgs...); err != nil {
			run.close()
			return nil, err
		}
	}
	return run, nil
}

func (r *benchRun) close() {
	if r.manager != nil {
		_ = r.manager.Stop(managerStopTimeout)
	}
	r.stopObs()
	r.cluster.stop()
}

// startManager runs the manager under test with the bench's flags (then the run's own
// args) and waits until its workers run; its log is bin/bench/manager-<label>.log.
func (b *bench) startManager(c *cluster, label string, args ...string) (*harness.ManagerProcess, error) {
	m, err := harness.StartManagerProcess(harness.ManagerProcessOptions{
		Binary: b.managerBin, Kubeconfig: c.Kubeconfig,
		LogPath: filepath.Join(b.workDir, "manager-"+label+".log"),
		Args:    append(append([]string{"--allow-insecure-endpoints"}, b.managerArgs...), args...),
	})
	if err != nil {
		return nil, err
	}
	if err := m.WaitStarted(2 * time.Minute); err != nil {
		_ = m.Stop(managerStopTimeout)
		return nil, err
	}
	return m, nil
}

// issuance is when a run's requests were created and when the last of them was Ready with
// a token in its Secret.
type issuance struct {
	createdAt                    map[string]time.Time
	first, lastCreated, allReady time.Time
}

// issue creates n requests against the bench's token endpoint and waits until all are Ready.
func (b *bench) issue(ctx context.Context, run *benchRun, n int) (issuance, error) {
	createdAt, first, lastCreated, err := b.createRequests(ctx, run.cluster, benchNamespace, 0, n, b.bank.url)
	if err != nil {
		return issuance{}, err
	}
	allReady, err := run.obs.waitAll(ctx, names(n), b.timeout)
	return issuance{createdAt: createdAt, first: first, lastCreated: lastCreated, allReady: allReady}, err
}

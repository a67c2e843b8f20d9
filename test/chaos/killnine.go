package main

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// killNine is scenario 1: the manager SIGKILLed at random moments while it rotates
// refresh tokens, and restarted at once.
type killNine struct {
	w     *world
	rng   *rand.Rand
	kills int
	// restartWindow is how long after a restart a good token must be back.
	restartWindow time.Duration
	lifetime      time.Duration
	answerDelay   time.Duration
	// proveChecks replays refresh tokens midway, for the run to show its reuse check fail.
	proveChecks bool

	set     *tokenSet
	rows    map[providers.Name]*killRow
	manager *harness.ManagerProcess
	checkLog
}

// killRow is one bank's line of the scenario's table.
type killRow struct {
	bankName                  providers.Name
	kills, midCall, restarts  int
	counts                    bankCounts
	maxToGood, longestRefused time.Duration
	lost, empty               int
}

const killNamespace = "chaos-kill"

func (k *killNine) run(ctx context.Context) ([]killRow, []string) {
	if err := k.setUp(ctx); err != nil {
		return nil, []string{"kill -9: setting up: " + err.Error()}
	}
	for i := 1; i <= k.kills && ctx.Err() == nil; i++ {
		if !k.killAndRestart(ctx, i) {
			break
		}
		if k.proveChecks && i == k.kills/2 {
			k.replayRefreshTokens(ctx)
		}
	}
	if err := k.manager.Stop(10 * time.Second); err != nil {
		k.failf("stopping the last manager: %v", err)
	}
	return k.finish(), k.failures
}

func (k *killNine) setUp(ctx context.Context) error {
	k.w.bank.SetRevokeRefreshToken(providers.Banfico, true)
	for _, b := range rotatingBanks {
		k.w.bank.SetAnswerDelay(b, k.answerDelay)
	}
	var err error
	if k.set, err = newTokenSet(ctx, k.w, killNamespace, k.restartWindow, nil); err != nil {
		return err
	}
	k.rows = map[providers.Name]*killRow{}
	for _, b := range rotatingBanks {
		k.rows[b] = &killRow{bankName: b}
	}
	if k.manager, err = k.w.startManager("kill", "--watch-namespaces="+killNamespace); err != nil {
		return err
	}
	if err := k.manager.WaitStarted(60 * time.Second); err != nil {
		return err
	}
	return k.set.waitFirstTokens(ctx, 30*time.Second)
}

// killAndRestart waits for a random moment, kills the manager, restarts it and checks that
// each bank's output Secret holds an accepted token within the restart window.
func (k *killNine) killAndRestart(ctx context.Context, i int) bool {
	k.waitForMoment(ctx, i)
	for _, b := range rotatingBanks {
		k.rows[b].kills++
		if k.w.bank.CallsInFlight(b) > 0 {
			k.rows[b].midCall++
		}
	}
	if err := k.manager.Kill(); err != nil {
		k.failf("kill #%d: %v", i, err)
		return false
	}
	restartedAt := time.Now()
	restarted, err := k.w.startManager("kill", "--watch-namespaces="+killNamespace)
	if err != nil {
		k.failf("kill #%d: restarting: %v", i, err)
		return false
	}
	k.manager = restarted
	for _, btr := range k.set.requests {
		row := k.rows[providers.Name(btr.Spec.Provider)]
		row.restarts++
		toGood, ok := k.set.watch.waitValid(ctx, outputKey(btr), restartedAt, k.restartWindow)
		row.maxToGood = max(row.maxToGood, toGood)
		if !ok {
			k.failf("kill #%d: %s: no token the bank accepts within %s of the restart; see %s", i, btr.Name, k.restartWindow, k.manager.LogPath())
		}
	}
	if err := k.manager.WaitStarted(30 * time.Second); err != nil {
		k.failf("kill #%d: %v", i, err)
		return false
	}
	return true
}

// waitForMoment picks when to kill: odd kills land while a call to a bank is in flight
// (the bank has acted on it, the manager has not heard back), even ones anywhere in a
// token's lifetime.
func (k *killNine) waitForMoment(ctx context.Context, i int) {
	if i%2 == 0 {
		sleep(ctx, time.Duration(k.rng.Int64N(int64(k.lifetime))))
		return
	}
	deadline := time.Now().Add(2 * k.lifetime)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, b := range rotatingBanks {
			if k.w.bank.CallsInFlight(b) > 0 {
				sleep(ctx, time.Duration(k.rng.Int64N(int64(k.answerDelay))))
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (k *killNine) finish() []killRow {
	var rows []killRow
	for _, btr := range k.set.requests {
		row := k.rows[providers.Name(btr.Spec.Provider)]
		row.counts = k.set.counts(row.bankName)
		seen := k.set.watch.snapshot(outputKey(btr))
		row.lost, row.empty, row.longestRefused = seen.lost, seen.empty, seen.longestInvalid
		k.check(row)
		rows = append(rows, *row)
	}
	return rows
}

func (k *killNine) check(row *killRow) {
	if row.counts.reuses > 0 {
		k.failf("kill -9: %s received %d spent refresh token(s) again (reuse); see the manager logs in %s", row.bankName, row.counts.reuses, k.w.runDir)
	}
	if row.lost > 0 || row.empty > 0 {
		k.failf("kill -9: %s lost its token: %d stretch(es) over %s with a refused token, %d reads of an empty Secret",
			row.bankName, row.lost, k.restartWindow, row.empty)
	}
	if row.counts.refreshes == 0 {
		k.failf("kill -9: %s never refreshed a token: the kills hit no rotation (lifetime %s too long?)", row.bankName, k.lifetime)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

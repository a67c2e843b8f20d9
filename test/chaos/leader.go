package main

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

const leaderNamespace = "chaos-leader"

// leaderKill is scenario 2: two replicas with leader election; the leader is SIGKILLed
// (its lease is not released) and replaced by a new standby, again and again.
type leaderKill struct {
	w     *world
	rng   *rand.Rand
	kills int
	// lease, renewDeadline and retry are passed to both replicas.
	lease, renewDeadline, retry time.Duration
	// lifetime and renewBefore leave a renewed token more time than a takeover takes.
	lifetime, renewBefore time.Duration

	set             *tokenSet
	leader, standby *harness.ManagerProcess
	maxTakeover     time.Duration
	checkLog
}

// leaderResult is the scenario's table and its takeover times.
type leaderResult struct {
	kills                    int
	maxTakeover, takeoverMax time.Duration
	rows                     []leaderRow
}

type leaderRow struct {
	bankName       providers.Name
	counts         bankCounts
	expired, lost  int
	longestRefused time.Duration
}

func (l *leaderKill) run(ctx context.Context) (leaderResult, []string) {
	result := leaderResult{takeoverMax: l.takeoverBound()}
	if err := l.setUp(ctx); err != nil {
		return result, []string{"leader election: setting up: " + err.Error()}
	}
	for i := 1; i <= l.kills && ctx.Err() == nil; i++ {
		result.kills++
		if !l.killLeader(i) {
			break
		}
	}
	for _, m := range []*harness.ManagerProcess{l.leader, l.standby} {
		if err := m.Stop(10 * time.Second); err != nil {
			l.failf("leader election: stopping a replica: %v", err)
		}
	}
	result.maxTakeover = l.maxTakeover
	result.rows = l.finish()
	return result, l.failures
}

// takeoverBound is how long a standby may take to lead: the dead leader's lease runs out,
// then the standby's next try, plus a second for a busy 2-core machine.
func (l *leaderKill) takeoverBound() time.Duration { return l.lease + l.retry + time.Second }

func (l *leaderKill) setUp(ctx context.Context) error {
	for _, b := range rotatingBanks {
		l.w.bank.SetLifetime(b, l.lifetime)
	}
	// Paymob revokes the access token a refresh replaces: a leader killed after the bank
	// answered leaves a refused token until the next leader's primary grant replaces it.
	refusedAtMost := l.takeoverBound() + time.Second
	var err error
	l.set, err = newTokenSet(ctx, l.w, leaderNamespace, refusedAtMost, renewingBefore(l.renewBefore))
	if err != nil {
		return err
	}
	if l.leader, err = l.startReplica(); err != nil {
		return err
	}
	if err := l.leader.WaitStarted(60 * time.Second); err != nil {
		return err
	}
	if l.standby, err = l.startReplica(); err != nil {
		return err
	}
	return l.set.waitFirstTokens(ctx, 30*time.Second)
}

func (l *leaderKill) startReplica() (*harness.ManagerProcess, error) {
	return l.w.startManager("replica", "--leader-elect=true", "--leader-election-namespace="+leaderNamespace,
		"--watch-namespaces="+leaderNamespace,
		"--leader-election-lease-duration="+l.lease.String(),
		"--leader-election-renew-deadline="+l.renewDeadline.String(),
		"--leader-election-retry-period="+l.retry.String())
}

// killLeader waits for the leader to have renewed every token that fell due, kills it at a
// random moment of the renewal period that follows, starts a new standby and waits for one
// of the two to lead.
func (l *leaderKill) killLeader(i int) bool {
	if !l.waitNothingDue(i) {
		return false
	}
	time.Sleep(time.Duration(l.rng.Int64N(int64(l.lifetime - l.renewBefore))))
	if err := l.leader.Kill(); err != nil {
		l.failf("leader kill #%d: %v", i, err)
		return false
	}
	killedAt := time.Now()
	replacement, err := l.startReplica()
	if err != nil {
		l.failf("leader kill #%d: starting a new standby: %v", i, err)
		return false
	}
	bound := l.takeoverBound()
	for !l.standby.Started() && !replacement.Started() && time.Since(killedAt) < bound+10*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	takeover := time.Since(killedAt)
	l.maxTakeover = max(l.maxTakeover, takeover)
	switch {
	case l.standby.Started() && replacement.Started():
		l.failf("leader kill #%d: both replicas lead at once; see %s", i, l.w.runDir)
	case !l.standby.Started() && !replacement.Started():
		l.failf("leader kill #%d: no replica took over within %s; see %s", i, takeover.Round(time.Second), l.standby.LogPath())
		l.leader = replacement
		return false
	case takeover > bound:
		l.failf("leader kill #%d: the standby took over after %s, over the lease duration's bound of %s", i, takeover.Round(100*time.Millisecond), bound)
	}
	if replacement.Started() {
		l.leader = replacement
	} else {
		l.leader, l.standby = l.standby, replacement
	}
	return true
}

// waitNothingDue waits until every token has more life left than renewBefore: the leader
// has renewed whatever fell due. renewBefore covers one takeover and the renewal after it; a
// second kill before the new leader renewed what the first one left due would ask for two
// takeovers within it, which no lease setting promises (a short run once killed a leader
// 0.2 s after it took over and a token expired). A leader that does not catch up within a
// takeover bound of its start is a failure of its own.
func (l *leaderKill) waitNothingDue(i int) bool {
	bound := l.takeoverBound() + l.renewBefore
	start := time.Now()
	for l.set.watch.leastRemaining(time.Now()) <= l.renewBefore {
		if time.Since(start) > bound {
			l.failf("leader kill #%d: the leader left a token due for over %s; see %s", i, bound, l.leader.LogPath())
			return false
		}
		time.Sleep(watchInterval)
	}
	return true
}

func (l *leaderKill) finish() []leaderRow {
	var rows []leaderRow
	for _, btr := range l.set.requests {
		b := providers.Name(btr.Spec.Provider)
		seen := l.set.watch.snapshot(outputKey(btr))
		row := leaderRow{bankName: b, counts: l.set.counts(b), expired: seen.expired, lost: seen.lost + seen.empty, longestRefused: seen.longestInvalid}
		if row.counts.reuses > 0 {
			l.failf("leader election: %s received %d spent refresh token(s) again: two replicas sent one", b, row.counts.reuses)
		}
		if row.expired > 0 || row.lost > 0 {
			l.failf("leader election: %s: %d token(s) expired unrenewed, %d refused or missing for longer than a takeover and a grant (%s)",
				b, row.expired, row.lost, l.takeoverBound()+time.Second)
		}
		// A renewal across takeovers is what this run needs to have seen; whether it came as a
		// refresh or, a refresh token having been spent by a killed leader mid-call, as a primary
		// grant, is the kills' luck: a short run (3 kills in about 15 s) once saw only the latter.
		if row.counts.refreshes+row.counts.primaryGrants <= 1 {
			l.failf("leader election: %s never renewed a token", b)
		}
		rows = append(rows, row)
	}
	return rows
}

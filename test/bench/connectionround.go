package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// A renewal round, as the connection run delimits it: it opens once issuance's writes have
// settled (before any token is due: renewals come at about 2/3 of the lifetime, and never
// sooner than the manager's --min-renewal-interval, 30 s) and closes when every request's
// output Secret has been seen holding a new token (--connection-rounds times), and then the
// apiserver's count of writes has stopped moving. Calls, writes and CPU are counted over
// that window, whose start holds the quiet time before the first renewal (nothing is
// written or called then, and the manager's CPU then is close to nothing).
//
// Delimiting by what the consumers see, not by a clock, counts each set-up's round the
// same way: with a shared grant, one call renews every consumer's token.

// roundResult is what the renewal rounds measured cost, in total over Rounds.
type roundResult struct {
	Rounds      int
	Window      time.Duration // window opened -> writes settled after the last new token
	RenewalSpan time.Duration // first to last new token seen in the window
	Calls       int64
	Writes      writeDelta
	CPU         float64 // the manager's CPU seconds in the window
	// MostPerSecret is the most new tokens one Secret got in the window: Rounds when each
	// was renewed once per round, more when the rounds overlapped.
	MostPerSecret int
	// Early is the new tokens seen before the window opened: 0, or a round began during
	// issuance and its first renewals are not counted.
	Early int
	// Manager is what the manager's metrics counted in the window.
	Manager managerCounts
}

// per divides a total over the rounds.
func (r roundResult) per(total float64) float64 { return total / float64(r.Rounds) }

// measureRounds waits for b.connRounds renewal rounds of every request in the run and
// counts what they cost.
func (b *bench) measureRounds(ctx context.Context, run *benchRun, metricsAddress string) (roundResult, error) {
	res := roundResult{Rounds: b.connRounds}
	all := names(b.connN)
	start, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return res, err
	}
	cpuBefore, managerBefore := run.manager.CPUSeconds(), scrapeManagerCounts(ctx, metricsAddress)
	// Each round ends within a lifetime of its start; one more lifetime is for a slow machine.
	deadline := start.at.Add(time.Duration(res.Rounds+1) * b.connLifetime)
	for {
		tally := run.obs.refreshesAfter(all, start.at, res.Rounds)
		if tally.done == len(all) {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("after %s: %d of %d output Secrets got %d new tokens", time.Since(start.at).Round(time.Second),
				tally.done, len(all), res.Rounds)
		}
		if err := sleepUntil(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
			return res, err
		}
	}
	if res.Writes, err = settledWrites(ctx, run.cluster, start.requests, nil, 15*time.Second); err != nil {
		return res, err
	}
	res.Window = time.Since(start.at)
	res.Calls = b.bank.calls.Load() - start.calls
	res.CPU = run.manager.CPUSeconds() - cpuBefore
	res.Manager = scrapeManagerCounts(ctx, metricsAddress).since(managerBefore)
	tally := run.obs.refreshesAfter(all, start.at, res.Rounds)
	res.RenewalSpan, res.MostPerSecret, res.Early = tally.last.Sub(tally.first), tally.most, tally.before
	return res, nil
}

// managerCounts are what the manager's own metrics counted: its reconciles of requests, and
// the token calls connections' budgets refused for now (spacing, a full window, a pause),
// each of which costs a reconcile and may cost a status write.
type managerCounts struct {
	reconciles, throttled float64
	err                   error // why the counts are unknown
}

func scrapeManagerCounts(ctx context.Context, address string) managerCounts {
	families, err := scrapeFamilies(ctx, &http.Client{Timeout: 2 * time.Second}, address)
	if err != nil {
		return managerCounts{err: err}
	}
	return managerCounts{
		reconciles: sumWhere(families["controller_runtime_reconcile_total"], "controller", controllerName),
		throttled:  sumWhere(families["banktoken_connection_throttled_total"], "", ""),
	}
}

// since is the counts from before to c.
func (c managerCounts) since(before managerCounts) managerCounts {
	return managerCounts{reconciles: c.reconciles - before.reconciles, throttled: c.throttled - before.throttled,
		err: errors.Join(before.err, c.err)}
}

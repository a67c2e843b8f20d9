// Package callbudget bounds the token calls made through one bank connection: at most
// Limits.Calls in any window of Limits.Interval, by all the requests that use the connection
// together, the most urgent first, and none while the bank has asked the connection to pause.
//
// # Why a sliding log
//
// A bank that limits a client counts its calls over a rolling window. A token bucket of
// burst M refilled at M per interval lets 2M through in one window (M spent at its end, M
// refilled, M spent again); a fixed window lets 2M through across its edge. The log keeps
// the times of the connection's last Calls calls and grants one only when the Calls-th
// newest has left the window, which is the rule itself: no window [t, t+Interval) ever
// holds more than Calls calls. A call made at t counts until t+Interval, not a moment less.
// A spec edit applies at once: the log keeps the newest calls the new limit asks about, and
// bounds those it dropped by the newest time it dropped (see callLog).
//
// # Why non-blocking
//
// Take answers at once: the call may go, or come back at RetryAt. A controller-runtime
// worker that waited inside Reconcile for a budget would hold one of the few workers the
// other connections' renewals need, for as long as an interval (a day, at most); the
// reconciler instead requeues itself for RetryAt, and its token, still valid, stays Ready.
//
// # Due first
//
// A request refused (budget spent, paused, or spacing) takes a place among the connection's
// waiters, ordered by its Claim.Due: when the token it renews expires, the earlier first.
// When the window has room, a request is granted a call only if the room exceeds the fresh
// waiters more urgent than itself, so freed calls go to the most urgent: a less urgent one
// goes first only when the room covers both. A granted waiter leaves; one that stops coming
// back (deleted, satisfied another way) expires WaiterGrace after the turn it was told, so
// it holds the others back that long at most; Withdraw removes one at once.
//
// Two things keep the order and spare the bank and the apiserver a herd:
//   - Spacing. A request that holds no place yet waits until min(Interval/Calls,
//     MaxSpacing) has passed since the connection's last call (250 ms by default; never
//     lowering the budget). After a restart or a rotation a thousand requests reach Take
//     over a few hundred milliseconds, each after reading its Secrets; without spacing the
//     first Calls of them to arrive would spend the window in arrival order. With it, the
//     first call goes at once and the others take their places; from then on a waiter
//     whose turn comes takes the room without waiting for the spacing.
//   - Turns. A refused request is told its own turn, not the moment room frees: the k-th
//     most urgent waiter is told when the k-th next call may go (after the pause, when the
//     window lets its limiting call go, k spacings on; beyond one window's worth of calls,
//     whole intervals on). A thousand waiters come back one turn apart, spread over the
//     intervals the budget needs for them, not all at the instant a pause ends or the
//     window frees. A request that took its place before more urgent ones arrived is told
//     too early a turn: it comes back, is refused, and is told its new one, which costs a
//     reconcile, not a call. In the simulation of 1,000 requests due at once, each asks
//     about four times in all and no second sees more than about 40 takes.
//
// # Memory
//
// Per connection: the log holds at most Calls times, 8 bytes each (480 bytes at the default
// 60 a minute, 800 KB at the API's maximum of 100,000 calls), allocated as calls are made;
// after the limit is lowered it shrinks at once. The waiters are one small entry per request
// refused and not yet granted, withdrawn or expired, so at most the connection's requests.
// Forget drops a connection and its series.
package callbudget

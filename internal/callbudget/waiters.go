package callbudget

import (
	"slices"
	"strings"
	"time"
)

// waiter is a request the budget refused, kept so that the calls that free up go to the
// most urgent first.
type waiter struct {
	requester string
	due       time.Time
	// expires is when the waiter stops holding its place: the time it was told to come
	// back, plus the grace. One that does not come back (deleted, satisfied another way)
	// holds the others back no longer than that.
	expires time.Time
}

// fresh says whether the waiter still holds its place at now.
func (w *waiter) fresh(now time.Time) bool { return !now.After(w.expires) }

// urgency orders claims: the earlier due first, the requester's name breaking ties so that
// the order is total. Negative: a goes before b.
func urgency(aDue time.Time, aRequester string, bDue time.Time, bRequester string) int {
	if c := aDue.Compare(bDue); c != 0 {
		return c
	}
	return strings.Compare(aRequester, bRequester)
}

// waitingRoom holds a connection's waiters, most urgent first, one per requester.
type waitingRoom struct {
	byUrgency   []*waiter
	byRequester map[string]*waiter
	// nextSweep is when expired waiters are next dropped from the middle of the room.
	nextSweep time.Time
}

func (r *waitingRoom) len() int { return len(r.byUrgency) }

// position is how many waiters are more urgent than a claim due at due, expired or not;
// found says the requester waits there with that due.
func (r *waitingRoom) position(due time.Time, requester string) (i int, found bool) {
	return slices.BinarySearchFunc(r.byUrgency, waiter{requester: requester, due: due}, func(w *waiter, claim waiter) int {
		return urgency(w.due, w.requester, claim.due, claim.requester)
	})
}

// freshAhead counts the fresh waiters more urgent than a claim, stopping at atMost, and
// drops the expired ones at the head on the way: it is called on every take, so a waiter
// that stopped coming back leaves the head as soon as it expires.
func (r *waitingRoom) freshAhead(due time.Time, requester string, now time.Time, atMost int) int {
	for len(r.byUrgency) > 0 && !r.byUrgency[0].fresh(now) {
		r.drop(0)
	}
	ahead := 0
	for _, w := range r.byUrgency {
		if ahead >= atMost || urgency(w.due, w.requester, due, requester) >= 0 {
			break
		}
		if w.fresh(now) {
			ahead++
		}
	}
	return ahead
}

// holdsPlace says whether the requester waits, fresh, among the waiters.
func (r *waitingRoom) holdsPlace(requester string, now time.Time) bool {
	w, ok := r.byRequester[requester]
	return ok && w.fresh(now)
}

// register puts a requester in its place, or moves it there.
func (r *waitingRoom) register(requester string, due, expires time.Time) {
	r.remove(requester)
	w := &waiter{requester: requester, due: due, expires: expires}
	if r.byRequester == nil {
		r.byRequester = map[string]*waiter{}
	}
	r.byRequester[requester] = w
	i, _ := r.position(due, requester)
	r.byUrgency = slices.Insert(r.byUrgency, i, w)
}

// remove forgets a requester's place, if it has one.
func (r *waitingRoom) remove(requester string) {
	w, ok := r.byRequester[requester]
	if !ok {
		return
	}
	if i, found := r.position(w.due, w.requester); found {
		r.drop(i)
	}
}

func (r *waitingRoom) drop(i int) {
	delete(r.byRequester, r.byUrgency[i].requester)
	r.byUrgency = slices.Delete(r.byUrgency, i, i+1)
}

// sweep drops the expired waiters, at most once per every, so that the room holds only
// requests still coming back and a position counts few that are not.
func (r *waitingRoom) sweep(now time.Time, every time.Duration) {
	if now.Before(r.nextSweep) {
		return
	}
	r.nextSweep = now.Add(every)
	r.byUrgency = slices.DeleteFunc(r.byUrgency, func(w *waiter) bool {
		if w.fresh(now) {
			return false
		}
		delete(r.byRequester, w.requester)
		return true
	})
}

// freshCount is how many waiters still hold their place.
func (r *waitingRoom) freshCount(now time.Time) int {
	n := 0
	for _, w := range r.byUrgency {
		if w.fresh(now) {
			n++
		}
	}
	return n
}

package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Event reasons the operator emits (internal/controller).
const (
	evTokenIssued          = "TokenIssued"
	evTokenRefreshed       = "TokenRefreshed"
	evRecovered            = "Recovered"
	evRefreshFailed        = "RefreshFailed"
	evRefreshTokenRejected = "RefreshTokenRejected"
)

// row is what the table shows of one BankTokenRequest. Nothing in it is a token or a secret.
type row struct {
	name    string
	bank    providers.Name
	ready   string // True, False, or "" before the first status
	reason  string
	message string
	expires time.Time
	secret  string
	// writes counts the operator's events that say it wrote a new token to the Secret:
	// TokenIssued, TokenRefreshed, Recovered. The first is the issue; the rest are refreshes.
	writes int
	// bankIssued counts the tokens the sandbox bank issued for this resource, by any grant.
	bankIssued int
	// tokenHash is a short sha256 prefix of the access token in the Secret, to see it change.
	tokenHash string
	// tokenValid says the sandbox bank accepts the token in the Secret right now.
	tokenValid bool
	lastEvent  *eventsv1.Event
}

func (r row) refreshes() int { return max(r.writes-1, 0) }

type snapshot struct {
	at     time.Time
	rows   []row
	events []eventsv1.Event // about the demo's BankTokenRequests, oldest first
	// notes say, after each renewal, whether the bank still accepted the replaced token.
	notes []string
	// shared is the shared connection scene; empty when the demo has none.
	shared sharedView
	err    error
}

// observe reads everything the table shows: BankTokenRequests, events and output Secrets
// from the apiserver, and what the sandbox bank issued and accepts.
func (d *demo) observe(ctx context.Context) snapshot {
	s := snapshot{at: time.Now()}
	list := &tokensv1alpha1.BankTokenRequestList{}
	if err := d.k8s.List(ctx, list, client.InNamespace(d.opts.namespace)); err != nil {
		s.err = err
		return s
	}
	if s.events, s.err = d.requestEvents(ctx); s.err != nil {
		return s
	}
	for _, want := range d.requests {
		r := row{name: want.Name, bank: d.bankOf[want.Name]}
		r.bankIssued = d.bankIssued(r.bank)
		r.writes, r.lastEvent = tokenWrites(s.events, r.name)
		r.readStatus(list.Items, want)
		if note := d.readToken(ctx, &r); note != "" {
			s.notes = append(s.notes, note)
		}
		s.rows = append(s.rows, r)
	}
	if d.shared != nil {
		s.shared, s.err = d.observeShared(ctx)
	}
	return s
}

// requestEvents are the events about the demo's BankTokenRequests, oldest first.
func (d *demo) requestEvents(ctx context.Context) ([]eventsv1.Event, error) {
	list := &eventsv1.EventList{}
	if err := d.k8s.List(ctx, list, client.InNamespace(d.opts.namespace)); err != nil {
		return nil, err
	}
	var events []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "BankTokenRequest" && d.bankOf[e.Regarding.Name] != "" {
			events = append(events, e)
		}
	}
	slices.SortStableFunc(events, func(a, b eventsv1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	return events, nil
}

// tokenWrites counts the events about name that say the operator wrote a new token to its
// Secret, and returns the last event about it.
func tokenWrites(events []eventsv1.Event, name string) (writes int, last *eventsv1.Event) {
	for i := range events {
		e := &events[i]
		if e.Regarding.Name != name {
			continue
		}
		switch e.Reason {
		case evTokenIssued, evTokenRefreshed, evRecovered:
			writes += eventCount(*e)
		}
		last = e
	}
	return writes, last
}

// readStatus fills the row from the resource's status: Ready, expiry and the output Secret
// (before the first status, the one its spec names).
func (r *row) readStatus(items []tokensv1alpha1.BankTokenRequest, want *tokensv1alpha1.BankTokenRequest) {
	idx := slices.IndexFunc(items, func(b tokensv1alpha1.BankTokenRequest) bool { return b.Name == want.Name })
	if idx >= 0 {
		btr := &items[idx]
		if c := meta.FindStatusCondition(btr.Status.Conditions, "Ready"); c != nil {
			r.ready, r.reason, r.message = string(c.Status), c.Reason, c.Message
		}
		if t := btr.Status.ExpiresAt; t != nil {
			r.expires = t.Time
		}
		r.secret = btr.Status.SecretName
	}
	if r.secret == "" {
		r.secret = cmp.Or(want.Spec.SecretName, want.Name)
	}
}

// readToken reads the access token in the row's Secret: a short hash of it, whether the
// bank accepts it, and, after a renewal, the note on the token it replaced ("" otherwise).
func (d *demo) readToken(ctx context.Context, r *row) (note string) {
	secret := &corev1.Secret{}
	if err := d.k8s.Get(ctx, types.NamespacedName{Namespace: d.opts.namespace, Name: r.secret}, secret); err != nil {
		return ""
	}
	tok := secret.Data[tokensv1alpha1.SecretKeyAccessToken]
	if len(tok) == 0 {
		return ""
	}
	r.tokenHash = shortHash(tok)
	r.tokenValid = d.bank.AccessTokenValid(r.bank, string(tok))
	return d.replaced.seen(ctx, d, r.name, r.bank, string(tok))
}

// bankIssued counts the tokens bank issued to its fixture client, the one the samples
// use: not those of the shared connection's client at the same bank.
func (d *demo) bankIssued(name providers.Name) int {
	return d.bank.IssuedTo(name, d.bank.Credentials(name).ClientID)
}

func eventTime(e eventsv1.Event) time.Time {
	if e.Series != nil && !e.Series.LastObservedTime.IsZero() {
		return e.Series.LastObservedTime.Time
	}
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e eventsv1.Event) int {
	if e.Series != nil && e.Series.Count > 1 {
		return int(e.Series.Count)
	}
	return 1
}

// live runs the table until the duration is up or the run is interrupted.
func (d *demo) live(ctx context.Context) error {
	sc := newScenario(d)
	certPEM, keyPEM := d.bank.ClientCertificate()
	replaced, err := newReplacedTokens(d.bank.CABundle(), certPEM, keyPEM)
	if err != nil {
		return err
	}
	d.replaced = replaced
	if d.opts.failures {
		go sc.run(ctx)
	}
	out := &screen{plain: d.opts.plain}
	fmt.Println(legend)
	fmt.Println()
	var deadline <-chan time.Time
	if d.opts.duration > 0 {
		deadline = time.After(time.Until(d.liveStart.Add(d.opts.duration)))
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	tracker := newTracker()
	var last snapshot
	var lastSnapshotPrint time.Time
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-deadline:
			done = true
		case <-tick.C:
		}
		if exited, err := d.manager.Exited(); exited {
			out.flush(d, last, sc)
			fmt.Printf("\nmanager log (last lines):\n%s\n", d.manager.LogTail(30))
			return fmt.Errorf("the manager exited unexpectedly: %v", err)
		}
		// The last look is taken even after Ctrl-C, for the summary.
		obsCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		snap := d.observe(obsCtx)
		cancel()
		if snap.err != nil {
			say("reading from the apiserver failed: %v", snap.err)
			continue
		}
		last = snap
		for _, note := range snap.notes {
			sc.add(snap.at, "%s", note)
		}
		tracker.update(snap, sc)
		if d.opts.plain {
			out.printNew(d, snap, sc)
			if time.Since(lastSnapshotPrint) >= 5*time.Second || done {
				out.printTable(d, snap)
				lastSnapshotPrint = time.Now()
			}
		} else {
			out.redraw(d, snap, sc)
		}
	}
	if last.at.IsZero() {
		return ctx.Err()
	}
	d.summarize(last, sc, tracker, ctx.Err() != nil)
	return nil
}

const legend = `REFRESHES counts the operator's TokenRefreshed and Recovered events (each one a new token it wrote to
the Secret after the first); BANK ISSUED counts the tokens the sandbox bank issued for the resource, the first
included, so it reads REFRESHES+1 unless something is amiss. TOKEN is a sha256 prefix of the token in the
Secret, and ✓ means the bank accepts that token now. No token or credential is printed.`

// tracker remembers what a single snapshot cannot say: whether Ready was ever false after a
// failure was injected, and which reasons were seen.
type tracker struct {
	readyFalseAfter map[string]bool
	reasonsAfter    map[string]map[string]bool
}

func newTracker() *tracker {
	return &tracker{readyFalseAfter: map[string]bool{}, reasonsAfter: map[string]map[string]bool{}}
}

func (t *tracker) update(s snapshot, sc *scenario) {
	for _, r := range s.rows {
		since := sc.injectedAt(r.bank)
		if since.IsZero() || s.at.Before(since) {
			continue
		}
		if r.ready == "False" {
			t.readyFalseAfter[r.name] = true
		}
		if t.reasonsAfter[r.name] == nil {
			t.reasonsAfter[r.name] = map[string]bool{}
		}
		t.reasonsAfter[r.name][r.reason] = true
	}
}

// screen draws the table: redrawn in place on a terminal, printed as snapshots otherwise.
type screen struct {
	plain      bool
	drawnLines int
	seenEvents map[string]int // event UID -> count printed
	seenNotes  int
}

func (d *demo) elapsed(t time.Time) string {
	if d.liveStart.IsZero() {
		return "+0s"
	}
	return fmt.Sprintf("+%ds", int(t.Sub(d.liveStart).Round(time.Second)/time.Second))
}

func tableLines(d *demo, s snapshot) []string {
	header := fmt.Sprintf("%-25s  %-14s  %-5s  %-14s  %-10s  %-9s  %-11s  %-10s  %s",
		"RESOURCE", "PROVIDER", "READY", "REASON", "EXPIRES IN", "REFRESHES", "BANK ISSUED", "TOKEN", "LAST EVENT")
	lines := []string{header}
	for _, r := range s.rows {
		lastEvent := "-"
		if e := r.lastEvent; e != nil {
			lastEvent = fmt.Sprintf("%s %ds ago", e.Reason, int(s.at.Sub(eventTime(*e)).Round(time.Second)/time.Second))
		}
		lines = append(lines, fmt.Sprintf("%-25s  %-14s  %-5s  %-14s  %-10s  %-9d  %-11d  %-10s  %s",
			r.name, r.bank, dash(r.ready), dash(r.reason), expiresIn(r.expires, s.at), r.refreshes(), r.bankIssued,
			tokenCell(r.tokenHash, r.tokenValid), lastEvent))
	}
	if d.shared != nil {
		lines = append(lines, "")
		lines = append(lines, sharedTableLines(s.shared, s.at)...)
	}
	return lines
}

// expiresIn is how long a token has left at at: "12s", "expired", or "-" for none.
func expiresIn(expires, at time.Time) string {
	switch left := expires.Sub(at); {
	case expires.IsZero():
		return "-"
	case left > 0:
		return fmt.Sprintf("%ds", int(left.Round(time.Second)/time.Second))
	default:
		return "expired"
	}
}

// tokenCell is a token's hash prefix and whether the bank accepts it: "1a2b3c4d ✓".
func tokenCell(hash string, valid bool) string {
	switch {
	case hash == "":
		return "-"
	case valid:
		return hash + " ✓"
	default:
		return hash + " ✗"
	}
}

// shortHash is a sha256 prefix of a token: enough to see it change, nothing to use.
func shortHash(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:])[:8]
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func eventLine(d *demo, e eventsv1.Event) string {
	note := strings.TrimSpace(e.Note)
	return fmt.Sprintf("  %-5s %-26s %-21s %s", d.elapsed(eventTime(e)), e.Regarding.Name, e.Reason, note)
}

// redraw replaces the previous frame on the terminal.
func (o *screen) redraw(d *demo, s snapshot, sc *scenario) {
	width, height := 160, 0
	if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 20 {
		width, height = w, h
	}
	var lines []string
	status := fmt.Sprintf("%s of %s", d.elapsed(s.at), d.opts.duration)
	if d.opts.duration == 0 {
		status = d.elapsed(s.at) + ", until Ctrl-C"
	}
	lines = append(lines, fmt.Sprintf("bank-token-operator demo  %s  ·  tokens live %s  ·  KUBECONFIG=%s",
		status, d.opts.lifetime, d.kubeconfig))
	lines = append(lines, "")
	lines = append(lines, tableLines(d, s)...)
	var events, notes []string
	for _, e := range s.events[max(len(s.events)-8, 0):] {
		events = append(events, eventLine(d, e))
	}
	for _, n := range sc.allNotes() {
		notes = append(notes, "  "+d.elapsed(n.at)+"  "+n.text)
	}
	if height > 0 {
		events, notes = fitBelow(height-1-len(lines), events, notes)
	}
	if len(events) > 0 {
		lines = append(lines, "", "recent events (kubectl get events):")
		lines = append(lines, events...)
	}
	if len(notes) > 0 {
		lines = append(lines, "", "injected failures:")
		lines = append(lines, notes...)
	}
	var b strings.Builder
	if o.drawnLines > 0 {
		fmt.Fprintf(&b, "\x1b[%dF\x1b[J", o.drawnLines)
	}
	for _, l := range lines {
		b.WriteString(truncate(l, width-1))
		b.WriteByte('\n')
	}
	fmt.Print(b.String())
	o.drawnLines = len(lines)
}

// fitBelow keeps, of the events and notes, the newest that fit in room lines with their
// sections' headings (a blank line and a title each). A frame taller than the terminal
// would scroll the table off the screen and leave a copy of its top at every redraw; the
// oldest lines of the longer section give way first. Plain mode prints them all.
func fitBelow(room int, events, notes []string) (keptEvents, keptNotes []string) {
	for {
		used := len(events) + len(notes)
		for _, section := range [][]string{events, notes} {
			if len(section) > 0 {
				used += 2
			}
		}
		switch {
		case used <= room || used == 0:
			return events, notes
		case len(notes) > len(events):
			notes = notes[1:]
		default:
			events = events[1:]
		}
	}
}

// printNew prints, in plain mode, events and injected failures not printed yet.
func (o *screen) printNew(d *demo, s snapshot, sc *scenario) {
	if o.seenEvents == nil {
		o.seenEvents = map[string]int{}
	}
	notes := sc.allNotes()
	type line struct {
		at   time.Time
		text string
	}
	var pending []line
	for _, n := range notes[o.seenNotes:] {
		pending = append(pending, line{n.at, fmt.Sprintf("  %-5s ▶ %s", d.elapsed(n.at), n.text)})
	}
	o.seenNotes = len(notes)
	for _, e := range s.events {
		if c := eventCount(e); o.seenEvents[string(e.UID)] < c {
			o.seenEvents[string(e.UID)] = c
			pending = append(pending, line{eventTime(e), eventLine(d, e)})
		}
	}
	slices.SortStableFunc(pending, func(a, b line) int { return a.at.Compare(b.at) })
	for _, l := range pending {
		fmt.Println(l.text)
	}
}

func (o *screen) printTable(d *demo, s snapshot) {
	fmt.Printf("\n[%s]\n", d.elapsed(s.at))
	for _, l := range tableLines(d, s) {
		fmt.Println(l)
	}
	fmt.Println()
}

// flush draws the last frame once more, so that it stays on screen.
func (o *screen) flush(d *demo, s snapshot, sc *scenario) {
	if s.at.IsZero() {
		return
	}
	if o.plain {
		o.printTable(d, s)
		return
	}
	o.redraw(d, s, sc)
}

func truncate(s string, width int) string {
	if width <= 0 {
		return s
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything the run prints at the end: one table per scenario, then the
// failed checks, each on a FAIL line.
type report struct {
	seed     uint64
	runDir   string
	took     time.Duration
	kills    []killRow
	leader   leaderResult
	outage   outageResult
	matrix   []matrixCell
	failures []string
}

func (r report) print(out io.Writer) {
	fmt.Fprintf(out, "\nchaos report (seed %d, %s)\n", r.seed, r.took.Round(time.Second))
	if len(r.kills) > 0 {
		fmt.Fprintln(out, "\nkill -9 of the manager during rotating refreshes")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "BANK\tKILLS\tMID-CALL\tRESTARTS\tREFRESHES\tPRIMARY GRANTS\tMAX TO GOOD TOKEN\tLONGEST REFUSED\tREUSES\tLOST")
		for _, row := range r.kills {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\n", row.bankName, row.kills, row.midCall, row.restarts,
				row.counts.refreshes, row.counts.primaryGrants, roundDuration(row.maxToGood), roundDuration(row.longestRefused), row.counts.reuses, row.lost+row.empty)
		}
		_ = tw.Flush()
	}
	r.printLeader(out)
	r.printOutage(out)
	r.printMatrix(out)
	fmt.Fprintln(out)
	for _, f := range r.failures {
		fmt.Fprintln(out, "FAIL: "+f)
	}
	if len(r.failures) == 0 {
		fmt.Fprintln(out, "PASS: every check held")
	} else {
		fmt.Fprintf(out, "logs kept in %s\n", r.runDir)
	}
}

func roundDuration(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

func (r report) printLeader(out io.Writer) {
	if len(r.leader.rows) == 0 {
		return
	}
	fmt.Fprintf(out, "\ntwo replicas, leader killed %d times: slowest takeover %s (bound: lease + retry period + 1s = %s)\n",
		r.leader.kills, roundDuration(r.leader.maxTakeover), r.leader.takeoverMax)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BANK\tREFRESHES\tPRIMARY GRANTS\tREUSES\tEXPIRED UNRENEWED\tLONGEST REFUSED\tLOST")
	for _, row := range r.leader.rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\n", row.bankName, row.counts.refreshes, row.counts.primaryGrants,
			row.counts.reuses, row.expired, roundDuration(row.longestRefused), row.lost)
	}
	_ = tw.Flush()
}

func (r report) printOutage(out io.Writer) {
	if len(r.outage.rows) == 0 {
		return
	}
	fmt.Fprintf(out, "\nkube-apiserver stopped for %s, just before the first renewal fell due (tokens live 90s, renewed 61s before expiry)\n", r.outage.duration)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BANK\tLEFT AT STOP\tCALLS WHILE DOWN\tRENEWED AFTER RETURN\tREFRESHES\tPRIMARY GRANTS\tREUSES\tEXPIRED\tLONGEST REFUSED\tLOST")
	for _, row := range r.outage.rows {
		renewed := "never"
		if row.renewedAfter > 0 {
			renewed = roundDuration(row.renewedAfter).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%d\n", row.bankName, roundDuration(row.leftAtStart), row.callsDuring, renewed, row.counts.refreshes,
			row.counts.primaryGrants, row.counts.reuses, row.expired, roundDuration(row.longestRefused), row.lost)
	}
	_ = tw.Flush()
}

func (r report) printMatrix(out io.Writer) {
	if len(r.matrix) == 0 {
		return
	}
	fmt.Fprintln(out, "\nfault matrix: each fault on at the banks below while renewals fall due (every 5s), then cleared")
	fmt.Fprintln(out, "(TLS faults are the server's: CALLS counts every bank's handshakes together)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tBANK\tCALLS\tATTEMPTS\tMIN GAP\tREADY REASONS DURING FAULT\tLONGEST REFUSED\tRECOVERED AFTER")
	for _, c := range r.matrix {
		attempts, gap := strconv.Itoa(c.attempts), "-"
		if c.serverWide {
			attempts = "-"
		} else if c.attempts > 1 {
			gap = roundDuration(c.minGap).String()
		}
		recovered := "never"
		if c.recoveredOK {
			recovered = roundDuration(c.recovered).String()
		}
		ready := strings.Join(c.reasons, ", ")
		if c.readyFalse {
			ready += " (False)"
		}
		if c.stalled {
			ready += " +Stalled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.fault, c.bankName, c.calls, attempts, gap, ready,
			roundDuration(c.longestRefused), recovered)
	}
	_ = tw.Flush()
}

// checkLog collects a scenario's failed checks, one line each.
type checkLog struct {
	failures []string
}

func (c *checkLog) failf(format string, args ...any) {
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

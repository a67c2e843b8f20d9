package main

import (
	"fmt"
	"io"
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
				row.refreshes, row.primaryGrants, roundDuration(row.maxToGood), roundDuration(row.longestRefused), row.reuses, row.lost+row.empty)
		}
		_ = tw.Flush()
	}
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

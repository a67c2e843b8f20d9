package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// options are the run's knobs; --short picks the make test sizes.
type options struct {
	assets, manager string
	seed            uint64
	kills           int
	leaderKills     int
	leaderLease     time.Duration
	outage          time.Duration
	faults          string
	faultWindow     time.Duration
	// faultsAlongside runs the matrix at the banks the other scenarios leave alone, at the
	// same time as them, so that the short run stays short.
	faultsAlongside bool
	lifetime        time.Duration
	answerDelay     time.Duration
	restartWindow   time.Duration
	keepLogs        bool
	proveChecks     bool
}

func parseOptions() options {
	var o options
	short := flag.Bool("short", false, "The short run of make test: 8 kills, 3 leader kills, no apiserver outage, "+
		"and two faults of the matrix at the three banks the kills leave alone, alongside the kills.")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory with etcd and kube-apiserver (default $KUBEBUILDER_ASSETS).")
	flag.StringVar(&o.manager, "manager", "", "A prebuilt manager binary; default: go build ./cmd into bin/chaos/manager.")
	flag.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "Seed of the kill moments; the report prints it, to repeat a run.")
	flag.IntVar(&o.kills, "kills", 100, "SIGKILLs of the manager during rotating refreshes.")
	flag.IntVar(&o.leaderKills, "leader-kills", 20, "SIGKILLs of the leader of two replicas.")
	flag.DurationVar(&o.leaderLease, "leader-lease", 3*time.Second, "Leader election lease duration of the two replicas (renew deadline 2/3 of it, retry period 1/6).")
	flag.DurationVar(&o.lifetime, "token-lifetime", 4*time.Second, "Access token lifetime at the sandbox banks in the kill -9 scenario.")
	flag.DurationVar(&o.answerDelay, "answer-delay", 300*time.Millisecond, "How long the banks hold each answer, so that kills land mid-call.")
	flag.DurationVar(&o.restartWindow, "restart-window", 10*time.Second, "How soon after a restart the output Secret must hold an accepted token.")
	flag.DurationVar(&o.outage, "apiserver-outage", 30*time.Second, "How long kube-apiserver is stopped in the outage scenario; 0 skips it.")
	flag.StringVar(&o.faults, "faults", "all", "Faults of the matrix, comma-separated names as the report prints them, \"all\" or \"none\".")
	flag.DurationVar(&o.faultWindow, "fault-window", 12*time.Second, "How long each fault of the matrix stays on.")
	flag.BoolVar(&o.faultsAlongside, "faults-alongside", false, "Run the fault matrix at the banks the other scenarios leave alone, at the same time as them.")
	flag.BoolVar(&o.proveChecks, "prove-checks", false, "Midway through the kills, send each rotating bank's stored refresh token twice, "+
		"as a broken operator would: the run must then FAIL on reuse. Shows the checks can fail.")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "Keep the run directory (manager and bank logs) even when every check passes.")
	flag.Parse()
	if *short {
		o.kills, o.leaderKills, o.outage = min(o.kills, 8), min(o.leaderKills, 3), 0
		o.faults, o.faultsAlongside = "500 server_error,truncated JSON", true
		// Long enough for a failure and one retry; shorter, so that the run stays under a minute.
		o.faultWindow = min(o.faultWindow, 8*time.Second)
	}
	selectFaults(o.faults) // stops the run now on an unknown name, not after the setup
	return o
}

// selectFaults picks the matrix's faults by name; an unknown name stops the run.
func selectFaults(names string) []faultCase {
	if names == "none" || names == "" {
		return nil
	}
	var picked []faultCase
	for _, fc := range allFaults() {
		if names == "all" || slices.Contains(strings.Split(names, ","), fc.name) {
			picked = append(picked, fc)
		}
	}
	if names != "all" && len(picked) != len(strings.Split(names, ",")) {
		fmt.Fprintf(os.Stderr, "chaos: --faults=%q names a fault the matrix does not have\n", names)
		os.Exit(2)
	}
	return picked
}

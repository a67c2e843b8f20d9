package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
)

// memoryLimitEnv carries the container's memory limit in bytes; the Deployment sets it from
// the downward API (resourceFieldRef limits.memory), which has no arithmetic, hence this.
const memoryLimitEnv = "MEMORY_LIMIT"

// memoryLimitShare is the garbage collector's soft limit's share of the container's limit:
// the rest is for what the Go runtime does not count, chiefly the binary's mapped pages
// (about 47 MiB of RSS, docs/scaling.md).
const memoryLimitShare = 0.9

// setMemoryLimit gives the garbage collector a soft limit below the container's, so that
// the heap is collected before it reaches twice its live size (GOGC=100) when that would not
// fit. Under the limit nothing changes; near it the collector runs more often, spending CPU
// instead of memory. An explicit GOMEMLIMIT wins (the runtime has already applied it).
// It returns the limit set, 0 for none.
func setMemoryLimit(getenv func(string) string) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	value := getenv(memoryLimitEnv)
	if value == "" {
		return 0, nil
	}
	limit, err := strconv.ParseInt(value, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("%s=%q is not a number of bytes", memoryLimitEnv, value)
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft, nil
}

// applyMemoryLimit sets the limit from the environment and says so. A malformed value is
// logged and ignored: the manager runs as it would without one.
func applyMemoryLimit() {
	soft, err := setMemoryLimit(os.Getenv)
	if err != nil {
		setupLog.Error(err, "no memory limit set for the garbage collector")
	}
	if soft > 0 {
		setupLog.Info("garbage collector's memory limit set", "limitMiB", soft>>20, "share", memoryLimitShare, "of", memoryLimitEnv)
	}
}

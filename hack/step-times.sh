#!/usr/bin/env bash
# Usage: hack/step-times.sh FILE [TITLE]
# Prints the steps recorded by hack/timed.sh in FILE: when each started, how long it took, and
# (*) the critical path: from the last step to finish, back through the step each one waited
# for (the one that ended last before it started). Steps under a second are left out.
set -euo pipefail
file="$1"; title="${2:-where the time went}"
[ -s "$file" ] || exit 0
sort -k2,2n -k3,3n "$file" | awk -v title="$title" '
  { name[NR] = $1; start[NR] = $2; end[NR] = $3; code[NR] = $4; n = NR }
  END {
    t0 = start[1]; last = 1
    for (i = 1; i <= n; i++) if (end[i] >= end[last]) last = i
    # Walk back: the step this one waited for is the latest to end at or before its start.
    for (i = last; i; i = prev) {
      critical[i] = 1; prev = 0
      for (j = 1; j <= n; j++)
        if (j < i && end[j] <= start[i] && (!prev || end[j] > end[prev])) prev = j
    }
    printf "%s (%ds in all; * marks the critical path):\n", title, end[last] - t0
    printf "  %-31s %7s %7s\n", "step", "start", "took"
    for (i = 1; i <= n; i++) {
      if (end[i] - start[i] < 1 && !code[i]) continue
      printf "  %-31s %6ds %6ds %s%s\n", name[i], start[i] - t0, end[i] - start[i], \
        critical[i] ? "*" : " ", code[i] ? " FAILED (exit " code[i] ")" : ""
    }
  }'

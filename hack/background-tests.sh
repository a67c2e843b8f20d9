#!/usr/bin/env bash
# Usage: hack/background-tests.sh start DIR COMMAND [ARGS...]
#        hack/background-tests.sh wait DIR
#
# make test's tests that need no cluster (the fuzz run, the alert rules) run at the lowest
# CPU priority, in the background, for the whole of make test. On a fresh machine they would
# otherwise take the two cores from the builds on the critical path (vet, then kube-apiserver):
# measured, the cold make test went from about 14 to 17 minutes when the alert rules' Prometheus
# module joined them. Niced, they use the CPU the other steps leave idle (the envtests, the
# demo and chaos spend much of their time waiting on processes), and never slow a step that
# is timed against a token's lifetime.
# `start` returns at once; `wait` waits for COMMAND, prints its output, and exits with its code.
set -uo pipefail
action="$1" dir="$2"
shift 2
case "$action" in
start)
  rm -rf "$dir" && mkdir -p "$dir" || exit 1
  ( nice -n 19 "$@" > "$dir/output" 2>&1; echo $? > "$dir/exit-code" ) < /dev/null &
  ;;
wait)
  # Longer than both steps take cold on two cores, so a hung one fails make test.
  for (( waited = 0; waited < 1200; waited++ )); do
    if [ -f "$dir/exit-code" ]; then
      cat "$dir/output"
      exit "$(cat "$dir/exit-code")"
    fi
    sleep 1
  done
  cat "$dir/output"
  echo "background tests: no result after 1200 s" >&2
  exit 1
  ;;
*)
  echo "usage: $0 start DIR COMMAND... | wait DIR" >&2
  exit 2
  ;;
esac

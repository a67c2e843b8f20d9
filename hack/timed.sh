#!/usr/bin/env bash
# Usage: hack/timed.sh STEP COMMAND [ARGS...]
# Runs COMMAND (stdout and stderr untouched, exit code passed on) and, when STEP_TIMES names a
# file, appends "STEP START END EXIT" (epoch seconds) to it; hack/step-times.sh prints the table.
set -uo pipefail
step="$1"; shift
start=$(date +%s)
"$@"
code=$?
if [ -n "${STEP_TIMES:-}" ]; then
  mkdir -p "$(dirname "$STEP_TIMES")"
  echo "$step $start $(date +%s) $code" >> "$STEP_TIMES"
fi
exit $code

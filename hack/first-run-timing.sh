#!/usr/bin/env bash
# Usage: hack/first-run-timing.sh [demo] [test] [warm-test]      (default: all three)
#
# Measures what a newcomer waits for (issue 18): the README's commands on a fresh clone of
# HEAD with empty, private GOCACHE and GOMODCACHE, so every module comes from the proxy and
# every package is compiled. Nothing of ./bin, ~/.cache/go-build or ~/go/pkg/mod is used.
#   demo       a cold `make demo`: the time until the first token is in a Secret, and the total
#   test       a cold `make test`, with its per-step table (hack/step-times.sh)
#   warm-test  `make test` again in the same clone, with everything built
# The goals: cold make test <= 15 min, cold make demo's first token <= 12 min, warm make test
# <= 5 min, on 2 cores. The load average is printed before and after each run: on a shared
# machine the times are only comparable between runs under similar load.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
commit="$(git -C "$root" rev-parse HEAD)"
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(demo test warm-test)

work="$(mktemp -d "${TMPDIR:-/tmp}/first-run-timing.XXXXXX")"
cleanup() {
  # The module cache is read-only by design; make it writable so that it can be removed.
  chmod -R u+w "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
results="$work/results.txt"
: > "$results"

say() { echo "first-run-timing: $*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
minutes() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# fresh_clone NAME: a clone of HEAD with its own empty Go caches; prints its directory.
fresh_clone() {
  local dir="$work/$1"
  mkdir -p "$dir/gocache" "$dir/gomodcache"
  git clone --quiet --no-local "$root" "$dir/repo" && git -C "$dir/repo" checkout --quiet "$commit" || return 1
  echo "$dir"
}

# in_clone DIR COMMAND...: runs COMMAND in DIR's clone with DIR's caches and step-times file.
in_clone() {
  local dir="$1"; shift
  (cd "$dir/repo" && env GOCACHE="$dir/gocache" GOMODCACHE="$dir/gomodcache" STEP_TIMES="$dir/step-times.txt" \
    KUBEBUILDER_ASSETS= "$@")
}

run_demo() {
  local dir start first="" line code=""
  dir="$(fresh_clone demo)" || return 1
  say "cold make demo in $dir/repo (load average $(loadavg))"
  start=$(date +%s)
  # The first token: the demo's table shows a token's hash with ✓ once the bank accepts it.
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [ -z "$first" ] && [[ "$line" =~ [0-9a-f]{8}\ ✓ ]]; then
      first=$(( $(date +%s) - start ))
      say "first token after $(minutes "$first")"
    fi
    [[ "$line" =~ ^first-run-timing:\ exit\ code\ ([0-9]+)$ ]] && code="${BASH_REMATCH[1]}"
  done < <(in_clone "$dir" make demo 2>&1; echo "first-run-timing: exit code $?")
  if [ -n "$first" ]; then first="$(minutes "$first")"; else first="(none seen)"; fi
  echo "cold make demo: exit code ${code:-?}, first token after $first, done after $(minutes $(( $(date +%s) - start ))); load average after: $(loadavg)" >> "$results"
  "$root/hack/step-times.sh" "$dir/step-times.txt" "cold make demo, steps" >> "$results"
}

run_test() { # NAME TITLE
  local dir="$work/$1" start code
  if [ ! -d "$dir/repo" ]; then dir="$(fresh_clone "$1")" || return 1; fi
  say "$2 in $dir/repo (load average $(loadavg))"
  start=$(date +%s)
  in_clone "$dir" make test
  code=$?
  echo "$2: exit code $code after $(minutes $(( $(date +%s) - start ))); load average after: $(loadavg)" >> "$results"
  # make test keeps its own table in bin/step-times.txt (and prints it at the end).
  "$root/hack/step-times.sh" "$dir/repo/bin/step-times.txt" "$2, steps" >> "$results"
}

say "HEAD $commit, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(go version | cut -d' ' -f3), free in ${TMPDIR:-/tmp}: $(df -h --output=avail "${TMPDIR:-/tmp}" | tail -n 1)"
for run in "${runs[@]}"; do
  case "$run" in
    demo) run_demo ;;
    test) run_test test "cold make test" ;;
    warm-test) run_test test "warm make test" ;;
    *) say "unknown run $run (demo, test, warm-test)"; exit 2 ;;
  esac
done
echo
say "results (HEAD $commit):"
cat "$results"

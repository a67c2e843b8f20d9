#!/usr/bin/env bash
# Usage: hack/go-test.sh [GO TEST FLAGS...]
#
# make test's go test. The controller's envtest suite is the long pole (about 350 s of specs,
# run one after another against one manager, most of it waiting for tokens to age), so its
# specs labelled "connections" and "openfinance" run in processes of their own, beside the
# rest of the suite and the other packages. Each process prints its output when
# it ends; the exit code is the first failure's.
set -uo pipefail
controller=github.com/banktoken/bank-token-operator/internal/controller
others=$(go list ./... | grep -vx "$controller") || exit 1
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT

# One process per label filter, each with a control plane of its own. The filters are
# disjoint (a spec labelled both connections and openfinance runs with connections) and
# together cover the suite. They spend most of their time waiting for tokens to age.
filters=(
  "connections:connections"
  "openfinance:openfinance && !connections"
  "controller:!connections && !openfinance"
)
jobs=()
for entry in "${filters[@]}"; do
  name=${entry%%:*}
  # The package's plain unit tests run once, in the last process.
  only_suite=(-run '^TestController$')
  [ "$name" != controller ] || only_suite=()
  go test "$controller" "${only_suite[@]}" -ginkgo.label-filter="${entry#*:}" "$@" > "$out/$name" 2>&1 &
  jobs+=("$!:$name")
done
# shellcheck disable=SC2086 # one argument per package
go test $others "$@"
code=$?
for job in "${jobs[@]}"; do
  wait "${job%%:*}"
  status=$?
  echo "--- internal/controller (${job##*:} specs):"
  cat "$out/${job##*:}"
  [ "$code" -ne 0 ] || code=$status
done
exit "$code"

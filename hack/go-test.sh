#!/usr/bin/env bash
# Usage: hack/go-test.sh [GO TEST FLAGS...]
#
# make test's go test. The controller's envtest suite is the long pole (about 275 s of specs,
# run one after another against one manager, most of it waiting for tokens to age), so its
# specs labelled "connections" run in a second process with a control plane of its own,
# beside the rest of the suite and the other packages. Each process prints its output when
# it ends; the exit code is the first failure's.
set -uo pipefail
controller=github.com/banktoken/bank-token-operator/internal/controller
others=$(go list ./... | grep -vx "$controller") || exit 1
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT

go test "$controller" -run '^TestController$' -ginkgo.label-filter=connections "$@" > "$out/connections" 2>&1 &
connections=$!
go test "$controller" -ginkgo.label-filter='!connections' "$@" > "$out/controller" 2>&1 &
controller_rest=$!
# shellcheck disable=SC2086 # one argument per package
go test $others "$@"
code=$?
for job in "$controller_rest:controller" "$connections:connections"; do
  wait "${job%%:*}"
  status=$?
  echo "--- internal/controller (${job##*:} specs):"
  cat "$out/${job##*:}"
  [ "$code" -ne 0 ] || code=$status
done
exit "$code"

#!/usr/bin/env bash
# Fails when a module that both the project and kube-apiserver (hack/controlplane) compile is
# at different versions in the two. Such a module, and every package above it, would be
# compiled twice on a fresh machine instead of once through the Go build cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

modules_of() { # dir, packages...: "path version" of every module the packages are built from
  local dir="$1"; shift
  (cd "$dir" && go list -deps -test -f '{{with .Module}}{{.Path}} {{.Version}}{{end}}' "$@" | sort -u)
}

differences="$(join <(modules_of "$root" ./...) <(modules_of "$root/hack/controlplane" ./kube-apiserver) \
  | awk '$2 != $3 { printf "  %s: project %s, hack/controlplane %s\n", $1, $2, $3 }')"
if [ -n "$differences" ]; then
  echo "The project and hack/controlplane build these modules at different versions:"
  echo "$differences"
  echo "Raise the lower one: 'go get MODULE@VERSION && go mod tidy' in the project, or the same in hack/controlplane."
  exit 1
fi
echo "the project and hack/controlplane share every module they both build"

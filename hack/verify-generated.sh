#!/usr/bin/env bash
# Fails when the committed CRDs, RBAC or deepcopy code differ from what controller-gen
# makes of the current sources, or the API's bank matrix from what hack/bankmatrix makes of
# internal/providers (docs/reference/api.md is hack/verify-api-reference.sh's). Generates into
# a scratch copy, so the tree is not touched.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
gen="${CONTROLLER_GEN:-$root/bin/controller-gen}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cd "$root"
mkdir -p "$scratch/crd" "$scratch/rbac"
"$gen" rbac:roleName=manager-role crd webhook paths="./..." \
  output:crd:artifacts:config="$scratch/crd" output:rbac:artifacts:config="$scratch/rbac" output:webhook:none

stale=0
for f in "$scratch"/crd/*.yaml; do
  diff -u "config/crd/bases/$(basename "$f")" "$f" >/dev/null || { echo "stale: config/crd/bases/$(basename "$f")"; stale=1; }
done
diff -u config/rbac/role.yaml "$scratch/rbac/role.yaml" >/dev/null || { echo "stale: config/rbac/role.yaml"; stale=1; }

# Bank matrix and deepcopy: regenerate in a copy of the API package and compare.
cp -r api "$scratch/api"
go run ./hack/bankmatrix "$scratch/api/v1alpha1"
for f in v1alpha1/zz_generated.bankmatrix.go v1alpha1/banktokenrequest_types.go; do
  diff -u "api/$f" "$scratch/api/$f" >/dev/null || { echo "stale: api/$f (hack/bankmatrix)"; stale=1; }
done
(cd "$scratch" && ln -s "$root/go.mod" go.mod && ln -s "$root/go.sum" go.sum && ln -s "$root/hack" hack \
  && "$gen" object:headerFile="hack/boilerplate.go.txt" paths="./api/...")
for f in $(cd api && find . -name 'zz_generated.*.go'); do
  diff -u "api/$f" "$scratch/api/$f" >/dev/null || { echo "stale: api/$f"; stale=1; }
done

if [ "$stale" -ne 0 ]; then
  echo "Generated files are stale: run 'make manifests generate' and commit the result."
  exit 1
fi
echo "generated files are up to date"

#!/usr/bin/env bash
# Fails when docs/reference/api.md differs from what crd-ref-docs makes of api/v1alpha1 as it
# is (a stale bank matrix is hack/verify-generated.sh's to report). Renders into a scratch
# file, so the tree is not touched.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

hack/api-reference.sh "$scratch/api.md"
if ! diff -U0 docs/reference/api.md "$scratch/api.md" >"$scratch/api.md.diff"; then
  echo "stale: docs/reference/api.md (the API reference, from api/v1alpha1's comments and markers); it would change:"
  head -n 20 "$scratch/api.md.diff"
  echo "The API reference is stale: run 'make generate' and commit the result."
  exit 1
fi
echo "the API reference is up to date"

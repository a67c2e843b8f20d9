#!/usr/bin/env bash
# Usage: hack/api-reference.sh OUTPUT.md
# Writes the API reference (docs/reference/api.md) from the Go types and markers of
# api/v1alpha1 with crd-ref-docs. make generate and hack/verify-generated.sh both run it, so
# the committed page and the one it is checked against are made the same way.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
crd_ref_docs="${CRD_REF_DOCS:-$root/bin/crd-ref-docs}"
out="$1"

cd "$root"
# Rendered beside the output and moved into place, so that a failed run leaves no half page.
tmp="$(mktemp "$(dirname "$out")/.api-reference.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"$crd_ref_docs" --source-path=./api --config=hack/crd-ref-docs/config.yaml \
  --templates-dir=hack/crd-ref-docs/templates --renderer=markdown --log-level=WARN \
  --output-path="$tmp"
chmod 0644 "$tmp" # mktemp's 0600 would otherwise carry over to the page
mv "$tmp" "$out"

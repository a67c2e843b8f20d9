#!/usr/bin/env bash
# Builds the envtest control plane (etcd + kube-apiserver) from the Go module proxy,
# because these machines cannot download setup-envtest's prebuilt binaries.
# The result is cached in the layout setup-envtest uses; a second run is a no-op.
#
# Usage: hack/setup-envtest.sh [BIN_DIR]      prints the assets directory on stdout.
# Honours KUBEBUILDER_ASSETS: if it already holds working binaries, they are used as they are.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"      # the proxy served v1.37.0 and v1.37.1, refused v1.37.2
ETCD_VERSION="${ETCD_VERSION:-3.6.6}"
BIN_DIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/bin}"
ASSETS="${BIN_DIR}/k8s/${K8S_VERSION}-$(go env GOOS)-$(go env GOARCH)"

say() { echo "setup-envtest: $*" >&2; }

have_right_versions() {
  local dir="$1"
  [ -x "$dir/etcd" ] && [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kubectl" ] || return 1
  "$dir/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v${K8S_VERSION}" || return 1
  "$dir/etcd" --version 2>/dev/null | grep -q "etcd Version: ${ETCD_VERSION}" || return 1
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ "${KUBEBUILDER_ASSETS}" != "${ASSETS}" ] \
  && [ -x "${KUBEBUILDER_ASSETS}/etcd" ] && [ -x "${KUBEBUILDER_ASSETS}/kube-apiserver" ]; then
  say "using the binaries in KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS}"
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi

if have_right_versions "$ASSETS"; then
  echo "$ASSETS"
  exit 0
fi

mkdir -p "$ASSETS"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

if ! "$ASSETS/etcd" --version 2>/dev/null | grep -q "etcd Version: ${ETCD_VERSION}"; then
  say "building etcd v${ETCD_VERSION} from the Go module proxy (about a minute on a cold cache)..."
  mkdir -p "$WORK/etcd"
  (
    cd "$WORK/etcd"
    go mod init envtest/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
    CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w" -o "$ASSETS/etcd" go.etcd.io/etcd/server/v3
  )
  say "etcd built after $(( $(date +%s) - start ))s"
fi

if ! "$ASSETS/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v${K8S_VERSION}"; then
  say "building kube-apiserver v${K8S_VERSION} from the Go module proxy."
  say "The first build takes about 7 minutes and 3 GB of memory on 2 cores; it is cached afterwards."
  mkdir -p "$WORK/apiserver"
  cd "$WORK/apiserver"
  kmod_json="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}")"
  kmod_gomod="$(printf '%s' "$kmod_json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  staging_version="v0${K8S_VERSION#1}"
  {
    echo "module envtest/apiserver"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    # k8s.io/kubernetes replaces its staging modules with ./staging paths; a dependency's
    # replace lines are ignored, so point each at the released module of the same version.
    grep -E '^[[:space:]]*k8s.io/[^ ]+ => \./staging/' "$kmod_gomod" \
      | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  cat > main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
GO
  go mod tidy >&2
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=${K8S_VERSION%%.*}"
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  ldflags="${ldflags} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${now}"
  ( while sleep 30; do say "still building kube-apiserver ($(( $(date +%s) - start ))s so far)..."; done ) &
  ticker=$!
  # No debug information (-dwarf=false, -s -w): nobody debugs these binaries, and it saves
  # about 6% of the build.
  CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "$ldflags" -o "$ASSETS/kube-apiserver" . || { kill $ticker; exit 1; }
  kill $ticker 2>/dev/null || true
  say "kube-apiserver built after $(( $(date +%s) - start ))s"
fi

if [ ! -x "$ASSETS/kubectl" ]; then
  kubectl_path="$(command -v kubectl || true)"
  [ -n "$kubectl_path" ] || { say "kubectl is not on the PATH"; exit 1; }
  ln -sf "$kubectl_path" "$ASSETS/kubectl"
fi

have_right_versions "$ASSETS" || { say "the binaries in $ASSETS do not report the expected versions"; exit 1; }
say "control plane ready in $ASSETS"
echo "$ASSETS"

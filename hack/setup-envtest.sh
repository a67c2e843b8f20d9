#!/usr/bin/env bash
# Builds the envtest control plane (etcd + kube-apiserver) from the Go module proxy,
# because these machines cannot download setup-envtest's prebuilt binaries.
# kube-apiserver is built from hack/controlplane, a committed module whose dependency versions
# equal the project's (hack/check-shared-versions.sh), with the Makefile's build flags: the
# k8s.io packages it compiles are then build-cache hits for go vet, go test and bin/manager.
# The result is cached in the layout setup-envtest uses; a second run is a no-op.
#
# Usage: hack/setup-envtest.sh [BIN_DIR]      prints the assets directory on stdout.
# Honours KUBEBUILDER_ASSETS: if it already holds working binaries, they are used as they are.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"      # the proxy served v1.37.0 and v1.37.1, refused v1.37.2
ETCD_VERSION="${ETCD_VERSION:-3.6.6}"
CONTROLPLANE_MODULE="$(cd "$(dirname "$0")" && pwd)/controlplane"
# The Makefile passes its own; they must be the same everywhere, since flags are part of the
# build-cache key of every package (-ldflags is not: it only changes the link).
GO_BUILD_FLAGS="${GO_BUILD_FLAGS:--trimpath -gcflags=all=-dwarf=false}"
export CGO_ENABLED="${CGO_ENABLED:-0}"
BIN_DIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/bin}"
ASSETS="${BIN_DIR}/k8s/${K8S_VERSION}-$(go env GOOS)-$(go env GOARCH)"

say() { echo "setup-envtest: $*" >&2; }

# reports BINARY PATTERN [GREP_FLAGS]: whether `BINARY --version` prints a line matching
# PATTERN. The output is read whole before grep looks at it: with pipefail, `etcd --version
# | grep -q` fails whenever grep stops reading before etcd has written its last line (etcd
# dies of SIGPIPE), which made a second make test refuse good binaries now and then.
reports() {
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  grep -q ${3:-} -- "$2" <<<"$out"
}

have_right_versions() {
  local dir="$1"
  [ -x "$dir/etcd" ] && [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kubectl" ] || return 1
  reports "$dir/kube-apiserver" "Kubernetes v${K8S_VERSION}" -x || return 1
  reports "$dir/etcd" "etcd Version: ${ETCD_VERSION}" || return 1
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
start=$(date +%s)

build_etcd() {
  say "building etcd v${ETCD_VERSION} from hack/controlplane/etcd (about a minute on a cold cache)..."
  grep -q "go.etcd.io/etcd/server/v3 v${ETCD_VERSION}\b" "$CONTROLPLANE_MODULE/etcd/go.mod" \
    || { say "hack/controlplane/etcd/go.mod does not require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}"; return 1; }
  (cd "$CONTROLPLANE_MODULE/etcd" && go build ${GO_BUILD_FLAGS} -ldflags "-s -w" -o "$ASSETS/etcd" go.etcd.io/etcd/server/v3)
  say "etcd built after $(( $(date +%s) - start ))s"
}

etcd_build="" etcd_pid=""
reports "$ASSETS/etcd" "etcd Version: ${ETCD_VERSION}" || etcd_build=yes
if [ -n "${ETCD_ONLY:-}" ]; then
  # make test builds etcd on its own, beside the project's first build (it shares nothing with it).
  [ -z "$etcd_build" ] || build_etcd
  exit 0
fi

build_kube_apiserver() {
  say "building kube-apiserver v${K8S_VERSION} from hack/controlplane (a module pinned to the"
  say "project's dependency versions, so the compiled k8s.io packages are shared with go test)."
  say "The first build takes about 7 minutes and 3 GB of memory on 2 cores; it is cached afterwards."
  local now pkg ldflags minor
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=${K8S_VERSION%%.*}"
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  ldflags="${ldflags} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${now}"
  grep -q "k8s.io/kubernetes v${K8S_VERSION}\$" "$CONTROLPLANE_MODULE/go.mod" \
    || { say "hack/controlplane/go.mod does not require k8s.io/kubernetes v${K8S_VERSION}"; return 1; }
  # The same flags as every other build of the Makefile (GO_BUILD_FLAGS), so that the
  # packages compiled here are build-cache hits for go vet, go test and bin/manager.
  (cd "$CONTROLPLANE_MODULE" && go build ${GO_BUILD_FLAGS} -ldflags "$ldflags" -o "$ASSETS/kube-apiserver" ./kube-apiserver)
  say "kube-apiserver built after $(( $(date +%s) - start ))s"
}

if ! reports "$ASSETS/kube-apiserver" "Kubernetes v${K8S_VERSION}" -x; then
  # The ticker writes nothing to stdout, and must not hold it either: the Makefile reads this
  # script's stdout through $(shell), which returns only when every writer has closed it, and
  # the ticker's last `sleep 30` outlives the kill below (it held make test up to 30 s).
  ( while sleep 30; do say "still building the control plane ($(( $(date +%s) - start ))s so far)..."; done ) >&2 &
  ticker=$!
  # etcd shares no compiled package with kube-apiserver (different grpc, otel, x/*), so it
  # builds beside it rather than before it.
  [ -z "$etcd_build" ] || { build_etcd & etcd_pid=$!; }
  build_kube_apiserver || { kill $ticker; exit 1; }
  [ -z "$etcd_pid" ] || wait "$etcd_pid" || { kill $ticker; exit 1; }
  kill $ticker 2>/dev/null || true
elif [ -n "$etcd_build" ]; then
  build_etcd
fi

if [ ! -x "$ASSETS/kubectl" ]; then
  kubectl_path="$(command -v kubectl || true)"
  [ -n "$kubectl_path" ] || { say "kubectl is not on the PATH"; exit 1; }
  ln -sf "$kubectl_path" "$ASSETS/kubectl"
fi

have_right_versions "$ASSETS" || { say "the binaries in $ASSETS do not report the expected versions"; exit 1; }
say "control plane ready in $ASSETS"
echo "$ASSETS"

# bank-token-operator. Tools are pinned and installed into ./bin from the Go module proxy.

# Image URL to use all building/pushing image targets: by default the release the chart
# names (its appVersion), never a moving "latest" tag.
APP_VERSION := $(shell sed -n 's/^appVersion: "\(.*\)"$$/\1/p' dist/chart/Chart.yaml)
IMG ?= ghcr.io/banktoken/bank-token-operator:$(APP_VERSION)
# Kubernetes version of the local control plane (built from source by hack/setup-envtest.sh).
ENVTEST_K8S_VERSION ?= 1.37.1

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

GOBIN ?= $(shell go env GOPATH)/bin

# Every go command run from here (builds, vet, tests, the scripts' go run) uses the flags
# kube-apiserver is built with (hack/setup-envtest.sh). Flags are part of each package's
# build-cache key: with the same flags, cgo setting and module versions
# (hack/check-shared-versions.sh), the ~700 k8s.io and other packages the project shares with
# kube-apiserver are compiled once on a fresh machine, not twice. No cgo and -trimpath, as in
# the image (Dockerfile); no DWARF, which nobody reads here.
GO_BUILD_FLAGS ?= -trimpath -gcflags=all=-dwarf=false
export GOFLAGS := $(strip $(filter-out $(GO_BUILD_FLAGS),$(GOFLAGS)) $(GO_BUILD_FLAGS))
export CGO_ENABLED ?= 0

# make test records how long each step took (hack/timed.sh) and prints the table at the end.
TIMED = hack/timed.sh
STEP_TIMES_FILE = $(CURDIR)/bin/step-times.txt

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: bank-matrix
bank-matrix: ## Generate the CRD's enums and CEL rules for providers, grants, client authentication and headers from internal/providers.
	go run ./hack/bankmatrix api/v1alpha1

.PHONY: manifests
manifests: controller-gen bank-matrix ## Generate the CRD and RBAC manifests from the API types and RBAC markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen bank-matrix crd-ref-docs ## Generate the DeepCopy methods of the API types and the API reference (docs/reference/api.md).
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."
	CRD_REF_DOCS=$(CRD_REF_DOCS) hack/api-reference.sh docs/reference/api.md

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	$(TIMED) vet go vet ./...

.PHONY: verify
verify: verify-code verify-api-reference ## Fail when generated files (the API reference included) are stale or code is not gofmt-clean.

# make test runs verify-code among the builds on its critical path, and verify-api-reference
# niced in the background (background-tests-start): crd-ref-docs is a build of its own (about
# 130 CPU-seconds cold) that shares no package with the others.
.PHONY: verify-code
verify-code: controller-gen
	$(TIMED) verify-generated env CONTROLLER_GEN=$(CONTROLLER_GEN) hack/verify-generated.sh
	$(TIMED) check-shared-versions hack/check-shared-versions.sh
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted (run make fmt)"; exit 1; fi

.PHONY: verify-api-reference
verify-api-reference: crd-ref-docs
	@$(TIMED) verify-api-reference env CRD_REF_DOCS=$(CRD_REF_DOCS) hack/verify-api-reference.sh

.PHONY: test
test: export STEP_TIMES = $(STEP_TIMES_FILE)
test: step-times-reset background-tests-start test-prerequisites setup-envtest ## Run all tests against a local control plane (built once, then cached in ./bin).
	@{ KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" KUSTOMIZE="$(KUSTOMIZE)" \
	  $(TIMED) go-test hack/go-test.sh -timeout 12m \
	  && $(MAKE) --no-print-directory demo DEMO_FLAGS="--duration=45s --require-refreshes" \
	  && $(MAKE) --no-print-directory chaos CHAOS_FLAGS=--short; \
	} ; code=$$?; \
	echo "waiting for the tests that ran in the background (fuzz, alert rules, the API reference):"; \
	hack/background-tests.sh wait "$(BACKGROUND_TESTS_DIR)" || { [ $$code -ne 0 ] || code=1; }; \
	hack/step-times.sh "$(STEP_TIMES)" "make test: where the time went"; exit $$code

# make test compiles without coverage instrumentation: on a fresh machine it is a second
# compile of the module's packages, and the cold run has seconds to spare of its 15 minutes.
.PHONY: cover
cover: setup-envtest ## Run the tests with a coverage profile in cover.out (go tool cover -html=cover.out).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" KUSTOMIZE="$(KUSTOMIZE)" go test ./... -coverprofile cover.out -timeout 12m

# The tests that need no cluster (and the API reference's check) run niced in the background for the whole of make test
# (hack/background-tests.sh says why); make test waits for them at its end.
BACKGROUND_TESTS_DIR = $(CURDIR)/bin/background-tests
.PHONY: background-tests-start
background-tests-start:
	@hack/background-tests.sh start "$(BACKGROUND_TESTS_DIR)" \
	  $(MAKE) --no-print-directory -j2 --output-sync=line fuzz-in-test alert-rules-test verify-api-reference

.PHONY: step-times-reset
step-times-reset:
	@mkdir -p $(dir $(STEP_TIMES_FILE)) && rm -f $(STEP_TIMES_FILE)

# The fuzz budget is a count of executions, not a duration. With a duration, Go 1.26's fuzz
# coordinator can report a bare "context deadline exceeded" when a busy machine starves a
# worker at the deadline (golang/go#75804, fixed in Go 1.27): a failure with no failing input.
# A count has no deadline to race; a loaded machine only makes it slower.
FUZZ_EXECS_IN_TEST ?= 30000x
FUZZTIME ?= 200000x

# make test fuzzes beside the control-plane build: the fuzz test needs no cluster.
.PHONY: fuzz-in-test
fuzz-in-test:
	@$(TIMED) fuzz go test ./internal/providers -run='^$$' -fuzz=FuzzParseTokenResponse -fuzztime=$(FUZZ_EXECS_IN_TEST)

.PHONY: fuzz
fuzz: ## Fuzz the token-response parser longer than make test does (FUZZTIME=1000000x for more).
	go test ./internal/providers -run='^$$' -fuzz=FuzzParseTokenResponse -fuzztime=$(FUZZTIME)

# The alert rules are tested by test/alerts, a module of its own (Prometheus's rule evaluation
# is too large a dependency for the main module). It needs no cluster, so make test runs it in
# the background (background-tests-start); its first, cold compile is about 145 CPU-seconds.
.PHONY: alert-rules-test
alert-rules-test: ## Test config/prometheus/alerts.yaml with Prometheus's rule evaluation (test/alerts).
	@cd test/alerts && $(abspath $(TIMED)) alert-rules go test ./...

# On a fresh machine the tools, etcd and the Go build cache are built together: one build
# alone leaves a core idle much of the time (downloads, links, large single packages).
# kube-apiserver waits for vet instead: the two share ~700 packages, which two concurrent go
# commands would both compile; one after the other, the second finds them in the build cache.
# The fuzz test and the alert rules run beside all this at the lowest priority
# (background-tests-start).
.PHONY: test-prerequisites
test-prerequisites:
	@$(MAKE) --no-print-directory -j4 --output-sync=line \
	  control-plane-after-vet download-control-plane-modules verify-code etcd kustomize

.PHONY: control-plane-after-vet
control-plane-after-vet: vet
	@$(MAKE) --no-print-directory setup-envtest

##@ Build

.PHONY: build
build: ## Build the manager binary.
	go build -o bin/manager ./cmd

.PHONY: install-plugin
install-plugin: $(LOCALBIN) ## Build the kubectl plugin into bin/kubectl-btr (put bin/ on the PATH, or copy it there: kubectl btr --help).
	go build -o $(LOCALBIN)/kubectl-btr ./cmd/kubectl-btr
	@echo "installed $(LOCALBIN)/kubectl-btr; with it on the PATH: kubectl btr list"

.PHONY: run
run: ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: build-installer
build-installer: manifests generate derived-manifests kustomize ## Generate dist/install.yaml: the CRD and everything needed to deploy the operator.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator to the cluster of the current kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Dependencies

LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p $(LOCALBIN)

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs

# Tools are built without debug information: it is never used here, and generating it is
# about a tenth of a cold build.
TOOL_GCFLAGS = -gcflags=all=-dwarf=false

CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
# crd-ref-docs writes docs/reference/api.md. It builds with its own module versions (k8s.io
# v0.35, controller-tools v0.20), so it shares no compiled packages with controller-gen: a
# cold build is about 50 CPU-seconds beyond the standard library.
CRD_REF_DOCS_VERSION ?= v0.3.0

.PHONY: setup-envtest
setup-envtest: $(LOCALBIN) ## Build etcd and kube-apiserver from the Go module proxy into ./bin/k8s (first time: ~8 minutes).
	@$(eval ENVTEST_ASSETS := $(shell K8S_VERSION=$(ENVTEST_K8S_VERSION) GO_BUILD_FLAGS="$(GO_BUILD_FLAGS)" CGO_ENABLED=$(CGO_ENABLED) STEP_TIMES=$(STEP_TIMES) \
	  $(TIMED) control-plane hack/setup-envtest.sh $(LOCALBIN)))
	@test -n "$(ENVTEST_ASSETS)" || { echo "setup-envtest failed"; exit 1; }
	@echo "KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS)"

.PHONY: etcd
etcd: $(LOCALBIN) ## Build only etcd into ./bin/k8s (setup-envtest builds it too).
	@K8S_VERSION=$(ENVTEST_K8S_VERSION) GO_BUILD_FLAGS="$(GO_BUILD_FLAGS)" ETCD_ONLY=1 $(TIMED) etcd hack/setup-envtest.sh $(LOCALBIN) >/dev/null

# The control plane's modules are fetched while vet builds, so that its build starts compiling at once.
.PHONY: download-control-plane-modules
download-control-plane-modules:
	@cd hack/controlplane && $(abspath $(TIMED)) download-control-plane-modules go mod download

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into ./bin.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Install kustomize into ./bin.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: crd-ref-docs
crd-ref-docs: $(CRD_REF_DOCS) ## Install crd-ref-docs into ./bin.
$(CRD_REF_DOCS): $(LOCALBIN)
	$(call go-install-tool,$(CRD_REF_DOCS),github.com/elastic/crd-ref-docs,$(CRD_REF_DOCS_VERSION))

HELM ?= $(LOCALBIN)/helm
# The tests render and lint the chart with Helm's packages at the version go.mod requires
# (helm v3.22.0: the newest v3 whose go.mod asks for no more than Go 1.26); the CLI that
# helm-lint and helm-template use is built from the same version.
HELM_VERSION ?= $(shell awk '$$1 == "helm.sh/helm/v3" { print $$2 }' go.mod)
# The ldflags are those of helm's own release build. Without them helm reports no version and
# assumes Kubernetes 1.20 for .Capabilities, kubeVersion checks and its deprecation lint.
# HELM_K8S_MINOR is the minor of the k8s.io modules that helm version builds with.
HELM_K8S_MINOR ?= 37
HELM_LDFLAGS = -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR)

.PHONY: helm
helm: $(HELM) ## Install helm into ./bin (built from the Go module proxy: 2 to 4 minutes, once).
$(HELM): $(LOCALBIN)
	@[ -f "$(HELM)-$(HELM_VERSION)" ] && [ "$$(readlink -- "$(HELM)" 2>/dev/null)" = "helm-$(HELM_VERSION)" ] || { \
	set -e; \
	echo "Downloading helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) (building it takes about 2 minutes)"; \
	rm -f "$(HELM)"; \
	STEP_TIMES=$(STEP_TIMES) $(TIMED) helm env GOBIN="$(LOCALBIN)" go install -trimpath $(TOOL_GCFLAGS) -ldflags "-s -w $(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); \
	mv "$(LOCALBIN)/helm" "$(HELM)-$(HELM_VERSION)"; \
	}; \
	ln -sf "helm-$(HELM_VERSION)" "$(HELM)"

# go-install-tool installs a pinned Go tool as bin/NAME-VERSION and links bin/NAME to it,
# so changing a version in this file reinstalls the tool.
# $1 - target path with name of binary, $2 - package url, $3 - version
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$$(basename "$(1)-$(3)")" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
$(TIMED) $$(basename "$(1)") env GOBIN="$(LOCALBIN)" go install $(TOOL_GCFLAGS) -ldflags "-s -w" $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(basename "$(1)-$(3)")" "$(1)"
endef

##@ Demo

# DEMO_FLAGS are passed to cmd/demo: --duration=0 runs until Ctrl-C, --require-refreshes
# fails the run unless every bank ends Ready and refreshed; see bin/demo --help.
DEMO_FLAGS ?=

.PHONY: demo
demo: demo-prerequisites setup-envtest ## Run the operator against a sandbox of five banks on a local control plane (DEMO_FLAGS="--duration=0": until Ctrl-C).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(TIMED) demo-run bin/demo $(DEMO_FLAGS)

# As in test-prerequisites: etcd beside the demo's binaries, kube-apiserver after them, so that
# it finds the packages they share in the build cache.
.PHONY: demo-prerequisites
demo-prerequisites:
	@$(MAKE) --no-print-directory -j3 --output-sync=line etcd download-control-plane-modules control-plane-after-demo-binaries

.PHONY: control-plane-after-demo-binaries
control-plane-after-demo-binaries: demo-binaries
	@$(MAKE) --no-print-directory setup-envtest

.PHONY: demo-binaries
demo-binaries: ## Build bin/manager (./cmd), bin/demo (./cmd/demo) and bin/kubectl-btr (./cmd/kubectl-btr), which the demo suggests trying.
	@echo "demo: building bin/manager, bin/demo and bin/kubectl-btr (a few minutes on a cold Go build cache)"
	@start=$$(date +%s); \
	( while sleep 30; do echo "demo:   still building bin/manager and bin/demo ($$(( $$(date +%s) - start ))s so far)..."; done ) & \
	ticker=$$!; trap 'kill $$ticker 2>/dev/null' EXIT; \
	$(TIMED) demo-binaries sh -c 'go build -o bin/manager ./cmd && go build -o bin/demo ./cmd/demo && go build -o bin/kubectl-btr ./cmd/kubectl-btr'

##@ Packaging

# Every CRD the operator installs (BankTokenRequest, BankConnection, ClusterBankConnection).
CRD_FILES = $(wildcard config/crd/bases/tokens.banktoken.io_*.yaml)
CHART_DIR := dist/chart

.PHONY: derived-manifests
derived-manifests: ## Copy the generated CRDs and manager rules, the alerts and the dashboard into the Helm chart and config/namespaced.
	@rm -f $(CHART_DIR)/templates/crd/*.yaml
	@for crd in $(CRD_FILES); do \
	  { echo '{{- if .Values.crd.enable }}'; \
	    sed -e '0,/^  annotations:$$/s//  annotations:\n    {{- if .Values.crd.keep }}\n    helm.sh\/resource-policy: keep\n    {{- end }}/' \
	        -e '0,/^  name: /s//  labels:\n    {{- include "bank-token-operator.labels" . | nindent 4 }}\n  name: /' "$$crd"; \
	    echo '{{- end }}'; } > $(CHART_DIR)/templates/crd/$$(basename "$$crd"); \
	done
	@{ echo '{{- /* Generated from config/rbac/role.yaml by make derived-manifests. Do not edit. */ -}}'; \
	  echo '{{- define "bank-token-operator.managerRules" }}'; \
	  sed -n '/^rules:$$/,$$p' config/rbac/role.yaml | tail -n +2; \
	  echo '{{- end }}'; } > $(CHART_DIR)/templates/rbac/_manager_rules.tpl
	@{ echo "# Generated from config/rbac/role.yaml by 'make derived-manifests': the same rules, as a Role."; \
	  echo "# Do not edit; change the +kubebuilder:rbac markers in internal/controller instead."; \
	  sed -e 's/^kind: ClusterRole$$/kind: Role/' -e 's/^  name: manager-role$$/  name: bank-token-operator-manager-role/' \
	    config/rbac/role.yaml; } > config/namespaced/manager-role/role.yaml
	@mkdir -p $(CHART_DIR)/files && cp config/prometheus/alerts.yaml config/grafana/bank-token-operator.json $(CHART_DIR)/files/
	@echo "updated $(CHART_DIR)/templates/crd, $(CHART_DIR)/templates/rbac/_manager_rules.tpl, config/namespaced/manager-role/role.yaml, $(CHART_DIR)/files"

.PHONY: helm-lint
helm-lint: helm ## Lint the Helm chart, cluster-wide and namespaced.
	$(HELM) lint --strict $(CHART_DIR)
	$(HELM) lint --strict $(CHART_DIR) --set 'watchNamespaces={payments,treasury}'

.PHONY: helm-template
helm-template: helm ## Render the Helm chart with its default values.
	$(HELM) template bank-token-operator $(CHART_DIR) --namespace bank-token-operator-system

ARGOCD_CUSTOMIZATIONS_DIR := config/argocd/resource_customizations/tokens.banktoken.io
ARGOCD_LUA_DIR := $(ARGOCD_CUSTOMIZATIONS_DIR)/BankTokenRequest

.PHONY: argocd-cm
argocd-cm: ## Render config/argocd/argocd-cm.yaml (the argocd-cm keys) from the Lua files beside it.
	@{ echo "# Generated from $(ARGOCD_CUSTOMIZATIONS_DIR) by 'make argocd-cm'. Do not edit: edit the .lua files."; \
	  echo "# Merge into Argo CD's argocd-cm, e.g.: kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm.yaml"; \
	  echo "apiVersion: v1"; echo "kind: ConfigMap"; echo "metadata:"; echo "  name: argocd-cm"; echo "  namespace: argocd"; \
	  echo "data:"; \
	  echo "  resource.customizations.health.tokens.banktoken.io_BankTokenRequest: |"; \
	  sed 's/^./    &/' $(ARGOCD_LUA_DIR)/health.lua; \
	  echo "  resource.customizations.actions.tokens.banktoken.io_BankTokenRequest: |"; \
	  echo "    discovery.lua: |"; \
	  sed 's/^./      &/' $(ARGOCD_LUA_DIR)/actions/discovery.lua; \
	  echo "    definitions:"; echo "    - name: refresh"; echo "      action.lua: |"; \
	  sed 's/^./        &/' $(ARGOCD_LUA_DIR)/actions/refresh/action.lua; \
	  for kind in BankConnection ClusterBankConnection; do \
	    echo "  resource.customizations.health.tokens.banktoken.io_$$kind: |"; \
	    sed 's/^./    &/' $(ARGOCD_CUSTOMIZATIONS_DIR)/$$kind/health.lua; \
	  done; \
	} > config/argocd/argocd-cm.yaml
	@echo "updated config/argocd/argocd-cm.yaml"

##@ Performance

# BENCH_FLAGS are passed to test/bench, e.g. BENCH_FLAGS="--sizes=100,1000 --idle=20s" for a
# quick run, "--scenarios=backlog,restart" for the start-up runs only, "--scenarios=connection" for
# 1,000 requests inline, on one connection and on one shared grant, per renewal round, or
# "--kube-api-qps=500 --kube-api-burst=1000 --max-concurrent-reconciles=32" to
# measure other manager flags; go run ./test/bench --help lists them all.
BENCH_FLAGS ?=

.PHONY: bench
bench: setup-envtest ## Scale benchmark: N=100/1,000/5,000 tokens, refresh spread, memory, backlog (1,000/5,000 waiting at start), restart (kill -9 with 5,000 tokens), connection (1,000 requests inline / PerRequest / Shared: bank calls and writes per renewal round), steady (5,000 tokens living 60 s renewed for 3 minutes after a 1-minute warm-up: the renewal rate of 50,000 at 10 minutes) (about 27 minutes; not part of make test).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./test/bench $(BENCH_FLAGS)

.PHONY: bench-steady
bench-steady: setup-envtest ## Steady state for 10 minutes: 5,000 tokens living 60 s (~130 renewals/s, the rate of 50,000 tokens living 10 minutes): lateness, expired tokens, apiserver requests and manager CPU per renewal, profiles (about 13 minutes).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./test/bench --scenarios=steady --steady-for=10m $(BENCH_FLAGS)

.PHONY: bench-50k
bench-50k: setup-envtest ## Memory and start-up at 50,000 long-lived tokens: RSS peak and settled, bytes per token, backlog to all Ready, restart (kill -9) settle time and calls (about 20-30 minutes on 2 cores).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./test/bench --scenarios=memory50k $(BENCH_FLAGS)

# make test renews 150 requests through one connection after a restart; this is the same
# spec with 1,000 (about 2 minutes): at most 50 calls in any 2 s window at the bank.
.PHONY: test-connection-budget
test-connection-budget: setup-envtest ## The call budget's restart spec with 1,000 requests through one connection (about 2 minutes; make test runs it with 150).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" BANKTOKEN_BUDGET_SPEC_REQUESTS=1000 go test ./internal/controller -run 'TestController$$' \
	  -count=1 -timeout 20m -ginkgo.focus='restarted manager' -ginkgo.v

# make test runs test/sharding with 3 requests per shard and one renewal round before and
# after the move; this is the same test with 50 per shard and 5 rounds (about 90 s).
.PHONY: test-sharding
test-sharding: setup-envtest ## Two managers as shards of one ring (kubernetes-controller-sharding's protocol): 100 requests, each renewed only by its shard, one drained during a renewal and moved, a shared grant across shards (about 90 s; make test runs a short one).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./test/sharding -count=1 -v -timeout 10m -args -resources-per-shard=50 -rounds=5

##@ Resilience

# CHAOS_FLAGS are passed to test/chaos: --short is the run make test does; --seed=N repeats
# a run's kill moments; --keep-logs keeps the manager and bank logs; go run ./test/chaos --help.
CHAOS_FLAGS ?=

.PHONY: chaos
chaos: setup-envtest ## Chaos run: 100 kill -9s during rotating refreshes, 20 leader kills, an apiserver outage (not the short run of make test).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(TIMED) chaos go run ./test/chaos $(CHAOS_FLAGS)

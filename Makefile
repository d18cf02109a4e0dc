# cinder-csi build and test entry points. `make help` lists them.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/cinder-csi/cinder-csi/pkg/version.Version=$(VERSION)
CSI_SANITY_VERSION := v5.6.0

.PHONY: help build test unit helm sanity sanity-binary bench lint lint-strict golangci-lint demo demo-manila fuzz clean

help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build the plugin, the emulator and the tools into bin/
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# golangci-lint (config .golangci.yml) is pinned and installed into bin/
# from the Go module proxy when missing or of another version. go vet and
# the gofmt check stay: go vet runs the vet suite exactly as go test does,
# and gofmt covers every tracked Go file.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint

lint: golangci-lint ## go vet, a gofmt check and golangci-lint (.golangci.yml: errcheck, staticcheck, revive, gocritic, misspell, unparam, funlen 80, gocyclo 20)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run ./...

golangci-lint: ## install the pinned golangci-lint into bin/ unless it is there
	@$(GOLANGCI_LINT) version 2>/dev/null | grep -q "version $(GOLANGCI_LINT_VERSION:v%=%) " || \
	  { echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(BIN)/"; \
	    GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); }

lint-strict: golangci-lint ## golangci-lint alone (make lint runs it too, after go vet and gofmt)
	$(GOLANGCI_LINT) run ./...

# The Helm chart tests (tests/manifests TestHelm*) skip without helm; say
# so before and after the run, not only in a skipped test's -v line.
HELM_VERSION := v3.18.6
HELM_FOUND = $(or $(HELM),$(shell command -v helm 2>/dev/null),$(wildcard $(BIN)/helm),$(wildcard /tmp/helmbin/helm))
HELM_NOTE := "*** helm not found: the Helm chart tests (tests/manifests TestHelm*) are SKIPPED. Install the pinned one with make helm, or set HELM=/path/to/helm ***"

unit: ## every package's tests, emulator and loop-device tests included (the Helm chart tests need helm: make helm)
	@[ -n "$(HELM_FOUND)" ] || echo $(HELM_NOTE)
	$(GO) test -count=1 -timeout 20m ./...
	@[ -n "$(HELM_FOUND)" ] || echo $(HELM_NOTE)

helm: ## install the pinned helm into bin/ (the Helm chart tests find it there)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

fuzz: ## run each fuzz target briefly over its seed corpus
	./hack/fuzz.sh 10s

# The sanity packages skip unless CINDER_CSI_SANITY is set, so `make unit`
# does not run the suites a second time; -p 1 runs the suites one after the
# other (Cinder's format and mount loop devices; Manila's bind-mount the
# emulator's share directories in a private mount namespace).
sanity: ## csi-sanity in-process: Cinder (default cloud, named cloud, injected faults), Manila (NFS, CephFS)
	@mkdir -p $(BIN)
	CINDER_CSI_SANITY=1 $(GO) test -count=1 -p 1 -timeout 30m -v ./tests/sanity/... > $(BIN)/sanity.log 2>&1 ; \
	  grep -E '^(--- |ok|FAIL|Ran |SUCCESS!|FAIL!|\s+\[FAIL\])' $(BIN)/sanity.log ; \
	  ./hack/sanity-summary.sh $(BIN)/sanity.log

sanity-binary: build ## the standalone csi-sanity binary against bin/cinder-csi-plugin and bin/openstack-emulator
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$(CSI_SANITY_VERSION)
	./hack/sanity-binary.sh

test: lint unit fuzz sanity sanity-binary ## what CI runs

bench: ## benchmarks (about 30 minutes; root for the node rows), beside the reference plugin when it builds; writes the tables in docs/benchmarks.md
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/cinder-csi-plugin ./cmd/csi-bench
	./hack/reference-plugin.sh $(BIN)/reference-cinder-csi-plugin || echo "bench: the reference plugin did not build; its columns are left out"
	./$(BIN)/csi-bench -runs 5 -plugin $(BIN)/cinder-csi-plugin -out docs/benchmarks.md \
	  $$([ -x $(BIN)/reference-cinder-csi-plugin ] && echo -reference $(BIN)/reference-cinder-csi-plugin)

demo: build ## the plugins against the emulator: a Cinder volume, then a Manila share, through their whole lives
	./$(BIN)/csi-demo
	./$(BIN)/csi-demo --driver manila

demo-manila: build ## the Manila part of the demo alone: an NFS share through its life
	./$(BIN)/csi-demo --driver manila

e2e-openstack: ## the driver end to end on a real OpenStack Zed (openstack-rig): controller, node, csi-sanity, differential test, benchmark
	./hack/e2e-openstack.sh

.PHONY: e2e-vm
e2e-vm: ## the Cinder node suite in a vm-rig guest (real kernel, virtio-blk hot-plug through the emulator's VM mode) and csi-sanity's node specs there; needs root; the Manila node (kernel NFSv3 on the emulator's export: two guests, csi-sanity)
	./hack/e2e-vm.sh

.PHONY: e2e-k8s
e2e-k8s: build ## real kube-apiserver + controller-manager + CSI sidecars (args from manifests/) against the emulator; needs root
	./hack/e2e-k8s.sh

clean:
	rm -rf $(BIN)

# mamori: the front door. CI calls the same targets (.ci/run → make test).
GO        ?= go
VERSION   ?= 0.1.0
REVISION  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=main
BINARIES  := mamori_exporter mamori_remediator
PKGS      := ./...

.PHONY: all build run test unit lint generate bench bench-remediator bench-probe fuzz clean setup-test

all: lint build test

build: $(BINARIES)

mamori_exporter: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./exporter/cmd/mamori_exporter

mamori_remediator: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./remediator/cmd/mamori_remediator

FORCE:

# Quick start, first command: the exporter on the embedded default (this
# machine, standard plan), serving /metrics on :9796.
run: mamori_exporter
	./mamori_exporter $(ARGS)

# Quick start, second command: installs and starts the Debian daemons the
# integration tests need (as root; skipped elsewhere), then runs every test.
test: setup-test
	MAMORI_INTEGRATION=1 $(GO) test -count=1 -p 1 -timeout 30m $(PKGS)

setup-test:
	./scripts/setup-test.sh

# Unit tests only: no daemons, no root.
unit:
	$(GO) test -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 $(PKGS)

generate:
	$(GO) run ./internal/cmd/generate

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./exporter/host/...

# The remediator's webhook under load: 500 alerts/s for 60 s, dry-run, the
# built binary; prints the acknowledgement latencies and checks the journal.
bench-remediator:
	MAMORI_BENCH_REMEDIATOR=1 $(GO) test -count=1 -run '^TestBenchWebhook$$' -v -timeout 15m ./remediator/

bench-probe: mamori_exporter
	./scripts/bench-probe.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./inventory/

clean:
	rm -f $(BINARIES)

# Container images FROM scratch of the static binaries (deploy/Containerfile.*),
# with podman (no daemon needed) or docker; deploy/compose.yml uses these tags.
# IMAGE_TOOL='podman --root DIR' or 'docker' chooses the builder.
IMAGE_TOOL ?=
images: build
	./scripts/build-images.sh $(VERSION) $(IMAGE_TOOL)
.PHONY: images

# The whole loop on this machine (root): a systemd customer server with the
# plus plan's services and the exporter's host role, and outside it the
# prober, Prometheus, Alertmanager, the remediator and smtp-sink, from
# deploy/'s configs with 5 s intervals. Runs in the background (state,
# configs, logs and mail in $(DEMO_DIR)).
DEMO_DIR ?= /run/mamori-demo
DEMO_BIN := $(DEMO_DIR)/demo
CHECK    ?= http
demo:
	@mkdir -p $(DEMO_DIR)
	@# On a fresh machine the package install and the Go builds are the two
	@# long parts, and neither needs the other: they run side by side.
	@./scripts/setup-test.sh --install-only >$(DEMO_DIR)/install.log 2>&1 & pid=$$!; \
	  $(MAKE) --no-print-directory build && CGO_ENABLED=0 $(GO) build -o $(DEMO_BIN) ./deploy/demo; built=$$?; \
	  wait $$pid; installed=$$?; cat $(DEMO_DIR)/install.log; \
	  [ $$installed -eq 0 ] && [ $$built -eq 0 ]
	$(DEMO_BIN) --dir=$(DEMO_DIR) up --root=. --exporter=mamori_exporter --remediator=mamori_remediator

# Stops the service of CHECK on the customer server, waits for the
# remediator to restart it and for the customer's email, prints both times.
demo-fault:
	$(DEMO_BIN) --dir=$(DEMO_DIR) fault --check=$(CHECK)

demo-stop:
	@if [ -x $(DEMO_BIN) ]; then $(DEMO_BIN) --dir=$(DEMO_DIR) stop; else echo "demo: not running"; fi
.PHONY: demo demo-fault demo-stop

# The end-to-end suite (e2e/): the demo's loop with 5 s intervals, one
# scenario per runbook check, a table of fault-to-recovery times. Root;
# installs what is missing first (scripts/setup-test.sh --install-only). `make test` runs it too (the e2e package).
e2e:
	-./scripts/setup-test.sh --install-only
	MAMORI_INTEGRATION=1 $(GO) test -count=1 -v -timeout 25m ./e2e/ $(E2E_ARGS)
.PHONY: e2e

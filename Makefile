# hoist — the two commands of the README, and the release of a service.
#
#   make demo      the whole loop on a local S3 server and a real systemd host (container;
#                  SUITE=bookworm for a Debian 12 host instead of Debian 13)
#   make test      install what the tests need (once), then fmt, clippy and every test
#   make release   build the example service, package it and release it to S3
#   make bench     run the benchmarks under bench/ (prints figures)
#
# Everything that must be installed is installed by scripts/install-test-deps.sh,
# which skips what is already there.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

HOIST_CACHE ?= /var/cache/hoist-test
export HOIST_CACHE
# Tests find moto_server and garage on PATH: the venv and cargo's bin come first.
export PATH := $(HOIST_CACHE)/venv/bin:$(HOME)/.cargo/bin:$(PATH)

CARGO ?= cargo
# The example service `make release` ships; override with SERVICE=... and MANIFEST=...
# (SERVICE=hoist-agent releases the agent itself, from agent/hoist.toml).
SERVICE ?= hello
MANIFEST ?= $(if $(filter hoist-agent,$(SERVICE)),agent/hoist.toml,examples/$(SERVICE)/hoist.toml)
# Cargo profile of the binary: the agent is built for size (see Cargo.toml).
PROFILE ?= $(if $(filter hoist-agent,$(SERVICE)),agent,release)
# Package version (default: the manifest's); the example service also reports it.
VERSION ?=
# Debian release of the demo's host and of bench/fleet.sh's hosts: trixie (13, the
# current stable) or bookworm (12).
SUITE ?= trixie
# Extra flags for `hoist release`, e.g. RELEASE_FLAGS="--bucket my-bucket --sign-key ~/.minisign/hoist.key"
RELEASE_FLAGS ?=

.PHONY: help deps fmt-check clippy test-only test release bench demo

help:
	@echo "make demo      the whole loop: release -> agent installs -> zero-downtime handoff -> rollback"
	@echo "make test      install test dependencies (once), then fmt, clippy and all tests"
	@echo "make release   build $(SERVICE), package it ($(MANIFEST)) and release it to S3"
	@echo "make bench     run the benchmarks in bench/"

deps:
	scripts/install-test-deps.sh

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The end-to-end host tests run beside the others (scripts/run-tests.sh).
test-only:
	CARGO=$(CARGO) scripts/run-tests.sh

test: deps fmt-check clippy test-only

release:
	$(if $(VERSION),HELLO_VERSION=$(VERSION)) $(CARGO) build --profile $(PROFILE) --locked -p $(SERVICE)
	$(CARGO) run --release --locked -q -p hoist-packager --bin hoist -- \
	    release --manifest $(MANIFEST) $(if $(VERSION),--version $(VERSION)) $(RELEASE_FLAGS)

demo:
	SUITE=$(SUITE) scripts/demo.sh

bench:
	scripts/install-test-deps.sh --bench
	@for b in bench/*.sh; do echo "=== $$b"; SUITE=$(SUITE) bash "$$b"; done

#!/usr/bin/env bash
# Benchmark of handoff (issue 4): UPGRADES (default 100) zero-downtime upgrades of the
# example service `hello` under steady load, side by side in one run with as many naive
# restarts of the same binary (SIGTERM, wait for the exit, start a new process binding the
# port) under the same load. Prints, per mode and connection kind (keep-alive, new
# connection per request):
#
#   - requests and failed requests, in steady state and inside upgrade windows
#     (handoff: signal until the old process exited; naive: signal until the new
#     process answers)                                   target: 0 failed for handoff
#   - p50 / p99 / max latency of successful requests, steady vs inside windows
#                                                        target: window p99 <= 2x steady p99
#   - time from the signal to the new process serving (first GET / it answers)
#
# The load generator is hoist-testkit's (closed-loop workers on 127.0.0.1, a failure is
# any connect/I/O error, non-200 or timeout). Builds what it needs in release mode;
# every process it starts is killed on exit, also on Ctrl-C.
#
#   bash bench/handoff.sh                      # 100 cycles per mode (~1 minute)
#   UPGRADES=20 bash bench/handoff.sh          # quicker look
#   bash bench/handoff.sh --pause-us 0         # saturating load instead of ~1 req/ms/worker
#   bash bench/handoff.sh --modes handoff --hello-arg=--idle-grace=0s
#                                              # the keep-alive race: idle connections closed
#                                              # at once (hyper's graceful_shutdown alone)
#   (extra arguments go to the driver: --keep-alive N --new-connection N --gap-ms N ...)
set -euo pipefail

UPGRADES=${UPGRADES:-100}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

say() { printf '==> %s\n' "$*" >&2; }
command -v cargo >/dev/null || { echo "error: cargo is missing: install Rust (rustup)" >&2; exit 1; }

say "building hello and the benchmark driver (release)"
(cd "$REPO" && cargo build --release --quiet -p hello --bin hello --example handoff_bench)
RELEASE="$CARGO_TARGET_DIR/release"

DRIVER_PID=
cleanup() {
    # The driver stops every hello process it started when it exits (SIGTERM ends
    # the run after the current cycle); wait for it so nothing outlives the script.
    if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "running $UPGRADES handoff upgrades, then $UPGRADES naive restarts, under load"
"$RELEASE/examples/handoff_bench" --hello "$RELEASE/hello" --upgrades "$UPGRADES" "$@" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=

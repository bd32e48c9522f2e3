#!/usr/bin/env bash
# Runs one of the programs of tests/e2e that boot Debian containers (`hoist-demo`
# for `make demo`, `hoist-fleet-bench` for bench/fleet.sh) on this machine:
#
#   scripts/run-container-program.sh PROGRAM [ARGS...]
#
# As root, on a fresh Debian 12 machine with only cargo: installs what the programs
# need (scripts/install-test-deps.sh --demo: systemd-container, debootstrap, moto in a
# venv under $HOIST_CACHE, …; skipped when present), builds PROGRAM, runs it. The
# program cleans up after itself, also on Ctrl-C; should it be killed outright, the
# containers it left behind are swept (`PROGRAM --sweep`).
set -euo pipefail

cd "$(dirname "$0")/.."

program=${1:?usage: $0 PROGRAM [ARGS...]}
shift

HOIST_CACHE=${HOIST_CACHE:-/var/cache/hoist-test}
export HOIST_CACHE
# moto (installed into a venv by install-test-deps.sh) and cargo's bin on PATH.
export PATH="$HOIST_CACHE/venv/bin:$HOME/.cargo/bin:$PATH"

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "$program boots containers and installs test dependencies: run it as root (sudo)"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again"

printf '==> installing what %s needs (skipped when already there)\n' "$program"
scripts/install-test-deps.sh --demo

# The program builds everything else itself (in a target directory of its own, so it
# never waits for another cargo run).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
printf '==> building %s\n' "$program"
cargo build --quiet --locked -p hoist-e2e --bin "$program"
binary="$CARGO_TARGET_DIR/debug/$program"

cleanup() {
    local status=$?
    if [ $status -ne 0 ]; then
        "$binary" --sweep || true
    fi
    exit $status
}
trap cleanup EXIT

"$binary" "$@"

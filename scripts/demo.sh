#!/usr/bin/env bash
# `make demo`: the whole hoist loop on a real systemd host, on this machine.
#
# On a fresh Debian 12 machine, as root, with no other step:
#   1. installs what it needs (scripts/install-test-deps.sh: systemd-container,
#      debootstrap, moto in a venv under $HOIST_CACHE, …; skipped when present),
#   2. builds hoist, hoist-agent and hello 1.0.0 / 2.0.0 and packages them with
#      `hoist build`,
#   3. starts moto on 127.0.0.1 as the S3 server and releases with `hoist release`,
#   4. boots a Debian 12 host (systemd-nspawn: systemd + cloud-init) from user-data
#      rendered from cloud-init/user-data.yaml → hello 1.0.0 serving,
#   5. releases hello 2.0.0 while a client sends requests continuously → 0 failed,
#   6. `hoist rollback` → 1.0.0 again, same guarantees,
#   7. prints a summary (times, request counts, failures) and removes everything it
#      started (container, its files, moto), also on failure or Ctrl-C.
#
# The host's own packages are not touched beyond the test dependencies: the
# container runs on a throwaway overlay of a cached root file system
# ($HOIST_CACHE/rootfs-nspawn-bookworm-*), which makes a second run faster.
set -euo pipefail

cd "$(dirname "$0")/.."

HOIST_CACHE=${HOIST_CACHE:-/var/cache/hoist-test}
export HOIST_CACHE
# moto (installed into a venv by install-test-deps.sh) and cargo's bin on PATH.
export PATH="$HOIST_CACHE/venv/bin:$HOME/.cargo/bin:$PATH"

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "the demo boots a container and installs test dependencies: run it as root (sudo make demo)"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again"

printf '==> installing what the demo needs (skipped when already there)\n'
scripts/install-test-deps.sh --demo

# The demo program builds everything else itself (in a target directory of its own,
# so it never waits for another cargo run).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
printf '==> building the demo program\n'
cargo build --quiet --locked -p hoist-e2e --bin hoist-demo
demo="$CARGO_TARGET_DIR/debug/hoist-demo"

# The demo cleans up after itself (also on Ctrl-C). Should it be killed outright,
# remove whatever container it left behind.
cleanup() {
    local status=$?
    if [ $status -ne 0 ]; then
        "$demo" --sweep || true
    fi
    exit $status
}
trap cleanup EXIT

"$demo"

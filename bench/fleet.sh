#!/usr/bin/env bash
# Fleet benchmark (issue 6): three Debian 12 hosts (systemd-nspawn, systemd +
# cloud-init) bootstrapped from rendered user-data, agents on their default polling
# (10 s ± 2 s), moto on 127.0.0.1 as S3, a client sending requests to every host
# throughout. Ten releases of `hello`, each at a random moment of the poll cycle.
# Prints, per host and overall, the median and max time from `hoist release`
# returning until the host serves the new version, and the failed requests:
#
#   targets: median <= 7 s, max <= 13 s, 0 failed requests
#
#   bash bench/fleet.sh                          # 3 hosts, 10 releases (~4 minutes warm)
#   bash bench/fleet.sh --hosts 2 --releases 4   # quicker look
#
# Run as root on Debian 12 (installs systemd-container, debootstrap and moto when
# missing, like `make demo`; the host's own packages are not touched otherwise).
# Figures are also written to target/e2e-report/fleet-bench.txt. Exit status 1 when
# a request failed or a unit did not hand over cleanly.
set -euo pipefail

cd "$(dirname "$0")/.."

HOIST_CACHE=${HOIST_CACHE:-/var/cache/hoist-test}
export HOIST_CACHE
export PATH="$HOIST_CACHE/venv/bin:$HOME/.cargo/bin:$PATH"

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "the benchmark boots containers: run it as root"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again"

printf '==> installing what the benchmark needs (skipped when already there)\n'
scripts/install-test-deps.sh --demo

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
printf '==> building the benchmark program\n'
cargo build --quiet --locked -p hoist-e2e --bin hoist-fleet-bench
bench="$CARGO_TARGET_DIR/debug/hoist-fleet-bench"

# The program cleans up after itself (also on Ctrl-C). Should it be killed outright,
# remove whatever container it left behind.
cleanup() {
    local status=$?
    if [ $status -ne 0 ]; then
        "$bench" --sweep || true
    fi
    exit $status
}
trap cleanup EXIT

"$bench" "$@"

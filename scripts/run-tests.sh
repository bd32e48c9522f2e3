#!/usr/bin/env bash
# Runs every test of the workspace: the end-to-end host tests (hoist-e2e, which mostly
# wait on containers booting and agents polling) beside the rest, so that the two cores
# stay busy. The rest's output comes first, then the end-to-end tests'; the exit status
# is non-zero when either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}

# Build every test program once, so the two runs below do not wait on each other.
"$cargo" test --workspace --locked --no-run || exit 1

e2e_log=$(mktemp)
trap 'rm -f "$e2e_log"' EXIT
"$cargo" test -p hoist-e2e --locked --no-fail-fast >"$e2e_log" 2>&1 &
e2e=$!
"$cargo" test --workspace --exclude hoist-e2e --locked --no-fail-fast
rest=$?
wait "$e2e"
e2e_status=$?
echo "=== end-to-end tests (cargo test -p hoist-e2e), run beside the others:"
cat "$e2e_log"
[ "$rest" = 0 ] && [ "$e2e_status" = 0 ]

#!/usr/bin/env bash
# `make demo`: the whole hoist loop on a real systemd host, on this machine.
#
#   scripts/demo.sh                 # the host runs Debian 13 (trixie), the current stable
#   SUITE=bookworm scripts/demo.sh  # the host runs Debian 12 (make demo SUITE=bookworm)
#
# On a fresh Debian 12 machine, as root, with no other step:
#   1. installs what it needs (scripts/install-test-deps.sh: systemd-container,
#      debootstrap, moto in a venv under $HOIST_CACHE, …; skipped when present),
#   2. builds hoist, hoist-agent and hello 1.0.0 / 2.0.0 and packages them with
#      `hoist build`,
#   3. starts moto on 127.0.0.1 as the S3 server and releases with `hoist release`,
#   4. boots a Debian $SUITE host (systemd-nspawn: systemd + cloud-init) from user-data
#      rendered from cloud-init/user-data.yaml → hello 1.0.0 serving,
#   5. releases hello 2.0.0 while a client sends requests continuously → 0 failed,
#   6. `hoist rollback` → 1.0.0 again, same guarantees,
#   7. prints a summary (times, request counts, failures) and removes everything it
#      started (container, its files, moto), also on failure or Ctrl-C.
#
# The host's own packages are not touched beyond the test dependencies: the
# container runs on a throwaway overlay of a cached root file system
# ($HOIST_CACHE/rootfs-nspawn-SUITE-*), which makes a second run faster.
set -euo pipefail

exec "$(dirname "$0")/../scripts/run-container-program.sh" hoist-demo --suite "${SUITE:-trixie}" "$@"

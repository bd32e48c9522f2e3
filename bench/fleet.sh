#!/usr/bin/env bash
# Fleet benchmark (issue 6): three Debian hosts (systemd-nspawn, systemd +
# cloud-init) bootstrapped from rendered user-data, agents on their default polling
# (10 s ± 2 s), moto on 127.0.0.1 as S3, a client sending requests to every host
# throughout. Ten releases of `hello`, each at a random moment of the poll cycle.
# Prints, per host and overall, the median and max time from `hoist release`
# returning until the host serves the new version, and the failed requests:
#
#   targets: median <= 7 s, max <= 13 s, 0 failed requests
#
#   bash bench/fleet.sh                          # 3 Debian 13 hosts, 10 releases (~4 minutes warm)
#   SUITE=bookworm bash bench/fleet.sh           # the same on Debian 12 hosts
#   bash bench/fleet.sh --hosts 2 --releases 4   # quicker look
#
# Run as root on Debian 12 (installs systemd-container, debootstrap and moto when
# missing, like `make demo`; the host's own packages are not touched otherwise).
# Figures are also written to target/e2e-report/fleet-bench.txt. Exit status 1 when
# a request failed or a unit did not hand over cleanly.
set -euo pipefail

exec "$(dirname "$0")/../scripts/run-container-program.sh" hoist-fleet-bench --suite "${SUITE:-trixie}" "$@"

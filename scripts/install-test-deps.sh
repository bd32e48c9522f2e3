#!/usr/bin/env bash
# Installs what hoist's tests and benchmarks need on a Debian 12 machine, as root.
# Every step is skipped when what it installs is already there, so a second run
# takes a second. Nothing here touches the project's build output.
#
#   scripts/install-test-deps.sh            # everything `make test` needs
#   scripts/install-test-deps.sh --bench    # plus the load and timing tools of bench/
#   scripts/install-test-deps.sh --demo     # what `make demo` needs (no garage)
#
# Where things go (outside the repository, shared by every clone on the machine):
#   $HOIST_CACHE/venv      moto[server] (the default S3 server of the tests)
#   ~/.cargo/bin/garage    garage (the S3 server that checks signatures and Content-MD5)
set -euo pipefail

HOIST_CACHE=${HOIST_CACHE:-/var/cache/hoist-test}
MOTO_VERSION=${MOTO_VERSION:-5.2.1}
GARAGE_VERSION=${GARAGE_VERSION:-2.5.0}
want_bench=0
want_garage=1
case "${1:-}" in
    --bench) want_bench=1 ;;
    --demo) want_garage=0 ;;
    "") ;;
    *) echo "usage: $0 [--bench|--demo]" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run this as root (it installs Debian packages): sudo $0"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again"

# --- Debian packages --------------------------------------------------------
apt_packages=(
    dpkg-dev      # dpkg-architecture, dpkg-deb extras used by the package tests
    lintian       # policy checks on every built .deb
    debootstrap   # the Debian root in which tests run the real dpkg
    systemd-container  # systemd-nspawn: real systemd hosts for end-to-end tests
    minisign      # the reference tool that must verify hoist's signatures
    zstd xz-utils # compressors dpkg-deb needs for the comparison tests
    python3 python3-venv  # moto's virtual environment
    util-linux    # unshare: private mount namespaces for sandboxes
    curl ca-certificates  # fetching presigned URLs in tests
    cloud-init    # `cloud-init schema` validates rendered user-data (disabled at boot below)
    git           # `hoist release` records the commit; its test makes a repository
    procps        # pgrep: tests prove no container process is left behind
    mount         # mount: the container harness mounts its overlays
    binutils gcc  # strip/objcopy/readelf/ar: `hoist build` strips binaries; cc builds a test binary
    binutils-aarch64-linux-gnu  # strips the aarch64 test binaries (packager/tests/build_elf.rs)
)
[ $want_bench = 1 ] && apt_packages+=(wrk hyperfine)

missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # cloud-init is installed only for its schema validator: keep it from running at
    # this machine's next boot (it would try to configure this machine).
    if printf '%s\n' "${missing[@]}" | grep -qx cloud-init; then
        touch /etc/cloud/cloud-init.disabled
    fi
fi

# --- moto (S3 with versioning) in a venv ---------------------------------------
mkdir -p "$HOIST_CACHE"
if ! "$HOIST_CACHE/venv/bin/moto_server" --help >/dev/null 2>&1; then
    say "pip install moto[server]==$MOTO_VERSION into $HOIST_CACHE/venv"
    rm -rf "$HOIST_CACHE/venv"
    /usr/bin/python3 -m venv "$HOIST_CACHE/venv" 2>/dev/null || python3 -m venv "$HOIST_CACHE/venv"
    "$HOIST_CACHE/venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# --- garage (S3 that checks signatures and Content-MD5) -------------------------
if [ $want_garage = 1 ] && ! garage --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
    say "cargo install garage@$GARAGE_VERSION (about 10 minutes, once per machine)"
    cargo install --quiet --locked garage --version "$GARAGE_VERSION"
fi

say "test dependencies are in place"

#!/usr/bin/env bash
# `hoist build` against `dpkg-deb --build` on the same ~40 MB payload, for gzip, xz and
# zstd, timed side by side with hyperfine, with the output sizes.
#
#   bench/build.sh                         # all three compressions, RUNS=3 each
#   RUNS=10 COMPRESSIONS="gzip zstd" bench/build.sh
#   KEEP=1 bench/build.sh                  # keep the payload and packages (path printed)
#
# dpkg-deb -Zxz alone takes ~30 s per run on 2 cores, hence the small default RUNS.
#
# The payload is real: ~26 MB of ELF executables and shared libraries from /usr/bin and
# /usr/lib/<multiarch>, plus ~14 MB of text (docs, Perl and Python sources), each file
# copied under /usr/lib/hoist-bench/ in both the dpkg-deb tree and the hoist.toml.
# dpkg-deb gets the tree as is (it writes no md5sums); hoist also computes md5sums
# and generates its docs and scripts, so it does strictly more work. For zstd, where
# compression is cheap enough for that to show, a third command adds what debhelper
# would do first (`md5sum` of every file into DEBIAN/md5sums, then dpkg-deb).
#
# Targets (issue 3): gzip at least 2x faster than `dpkg-deb -Zgzip` (level 9) at no more
# than 2% larger output; zstd no slower than `dpkg-deb -Zzstd`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
compressions=${COMPRESSIONS:-gzip xz zstd}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
hoist=$target_dir/release/hoist

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for tool in hyperfine dpkg-deb jq cargo; do
    command -v "$tool" >/dev/null || die "$tool is missing: run \`make bench\` (scripts/install-test-deps.sh --bench installs it)"
done

echo "==> cargo build --release -p hoist-packager"
(cd "$repo" && cargo build --release --quiet -p hoist-packager)
[ -x "$hoist" ] || die "no hoist binary at $hoist"

work=$(mktemp -d /tmp/hoist-bench-build.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then
    echo "==> keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

# --- payload ---------------------------------------------------------------
# Files are picked in name order until a byte budget is reached, so the payload is the
# same on every run on this machine. Names with whitespace, quotes or backslashes are
# skipped (they would need escaping in TOML and hoist rejects whitespace in paths).
pick() { # budget_bytes dirs...
    local budget=$1; shift
    find "$@" -type f -size -4M -printf '%s %p\n' 2>/dev/null \
        | grep -v -E "[[:space:]].*[[:space:]]|[\"\\\\']" \
        | sort -k2 \
        | awk -v budget="$budget" '{ if (total + $1 <= budget) { total += $1; print $2 } }'
}
multiarch=$(ls -d /usr/lib/*-linux-gnu | head -n1)
{
    pick $((26 * 1024 * 1024)) /usr/bin "$multiarch"
    pick $((14 * 1024 * 1024)) /usr/share/doc /usr/share/perl5 /usr/lib/python3
} > "$work/files.list"

tree=$work/tree
mkdir -p "$tree/DEBIAN" "$work/out"
cat > "$tree/DEBIAN/control" <<'EOF'
Package: hoist-bench
Version: 1.0
Architecture: amd64
Maintainer: hoist bench <bench@example.com>
Description: payload for hoist's build benchmark
 Real binaries, libraries and text.
EOF
cat > "$work/hoist.toml" <<'EOF'
[package]
name = "hoist-bench"
version = "1.0"
architecture = "amd64"
maintainer = "hoist bench <bench@example.com>"
description = """
payload for hoist's build benchmark
Real binaries, libraries and text."""
license = "various"
EOF
while read -r src; do
    dest=/usr/lib/hoist-bench$src
    mkdir -p "$tree$(dirname "$dest")"
    cp --preserve=mode "$src" "$tree$dest"
    printf '\n[[files]]\nsource = "tree%s"\ndest = "%s"\n' "$dest" "$dest" >> "$work/hoist.toml"
done < "$work/files.list"
payload_bytes=$(du -sb --exclude=DEBIAN "$tree" | cut -f1)
# The same tree (hard links) for the md5sums + dpkg-deb baseline.
cp -al "$tree" "$work/tree-md5"
md5_then_dpkg="cd $work/tree-md5 && find usr -type f -print0 | sort -z | xargs -0 md5sum > DEBIAN/md5sums \
&& dpkg-deb --root-owner-group -Zzstd --build $work/tree-md5 $work/out/dpkg-md5-zstd.deb"
printf '==> payload: %d files, %.1f MB (%s)\n' "$(wc -l < "$work/files.list")" \
    "$(echo "$payload_bytes / 1000000" | bc -l)" "$work"
echo "==> $(nproc) cores; $("$hoist" --version); $(dpkg-deb --version | head -n1)"

# --- timings -----------------------------------------------------------------
declare -A ext=([gzip]=gz [xz]=xz [zstd]=zst)
for c in $compressions; do
    echo
    echo "=== $c"
    extra=()
    [ "$c" = zstd ] && extra=(-n "md5sum + dpkg-deb -Zzstd" "$md5_then_dpkg")
    hyperfine --warmup 1 --runs "$runs" --style basic \
        --export-json "$work/$c.json" \
        -n "dpkg-deb -Z$c" "dpkg-deb --root-owner-group -Z$c --build $tree $work/out/dpkg-$c.deb" \
        -n "hoist build --compression $c" "$hoist build --manifest $work/hoist.toml --out-dir $work/out/hoist-$c --compression $c" \
        "${extra[@]}"
done

# --- summary -------------------------------------------------------------------
echo
echo "=== summary (mean of $runs runs; size of the .deb)"
printf '%-6s %12s %12s %9s %14s %14s %9s\n' compr dpkg-deb hoist speedup dpkg-deb-bytes hoist-bytes size
for c in $compressions; do
    dpkg_s=$(jq '.results[0].mean' "$work/$c.json")
    hoist_s=$(jq '.results[1].mean' "$work/$c.json")
    dpkg_b=$(stat -c %s "$work/out/dpkg-$c.deb")
    hoist_b=$(stat -c %s "$work/out/hoist-$c/hoist-bench_1.0_amd64.deb")
    # Both packages hold the same files (hoist adds changelog, copyright, overrides).
    [ "$(ar t "$work/out/hoist-$c/hoist-bench_1.0_amd64.deb" | tail -n1)" = "data.tar.${ext[$c]}" ] \
        || die "hoist's $c package has no data.tar.${ext[$c]}"
    printf '%-6s %11.3fs %11.3fs %8.2fx %14d %14d %+8.2f%%\n' "$c" "$dpkg_s" "$hoist_s" \
        "$(echo "$dpkg_s / $hoist_s" | bc -l)" "$dpkg_b" "$hoist_b" \
        "$(echo "($hoist_b - $dpkg_b) * 100 / $dpkg_b" | bc -l)"
done
if [[ " $compressions " == *" zstd "* ]]; then
    printf 'zstd with md5sums: md5sum + dpkg-deb %.3fs, hoist %.3fs (%.2fx)\n' \
        "$(jq '.results[2].mean' "$work/zstd.json")" "$(jq '.results[1].mean' "$work/zstd.json")" \
        "$(echo "$(jq '.results[2].mean' "$work/zstd.json") / $(jq '.results[1].mean' "$work/zstd.json")" | bc -l)"
fi
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews wall times)"

#!/usr/bin/env bash
# Benchmark of hoist-agent (issue 5). Prints three figures:
#
#   1. idle polling: RSS (mean/max) and CPU of the agent polling one unchanged object
#      every 10 s for IDLE_SECONDS (default 300)            target: RSS <= 12 MiB
#      and the requests S3 saw meanwhile (from moto's log)  target: 1 HEAD per poll, 0 GET
#   2. peak RSS while downloading and installing a BIG_MB (default 200) MB package
#                                                            target: idle + 16 MiB
#   3. time from `hoist release` returning until the new version serves (a new
#      process answers GET /), over RELEASES (default 10) releases at a 10 s interval
#                                                            target: median <= 7 s
#
# Everything runs locally: moto on a free port, packages installed by the real dpkg
# into a throwaway Debian root (`[dpkg] root`, never the host's packages), the example
# service `hello` run from that root with pidfile signalling. Releases are signed (a
# throwaway `minisign -G -W` key), as agents require. Builds what it needs in
# release mode, cleans up on exit. Needs: cargo, moto_server, curl, dpkg, debootstrap
# (only when no cached root exists; `make test` builds one).
#
#   bash bench/agent.sh                       # full run (~9 minutes)
#   IDLE_SECONDS=60 RELEASES=5 bash bench/agent.sh   # quicker look
#   AGENT_RUST_LOG=info BENCH_KEEP_LOG=/tmp/agent.log bash bench/agent.sh   # keep the agent's log
set -euo pipefail

IDLE_SECONDS=${IDLE_SECONDS:-300}
BIG_MB=${BIG_MB:-200}
RELEASES=${RELEASES:-10}
INTERVAL=${INTERVAL:-10s}
HOIST_CACHE=${HOIST_CACHE:-/var/cache/hoist-test}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
export PATH="$HOIST_CACHE/venv/bin:$HOME/.cargo/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for tool in cargo moto_server curl dpkg minisign; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-test-deps.sh --bench"
done
[ "$(id -u)" = 0 ] || die "run as root (dpkg --root installs into a throwaway root)"

WORK=$(mktemp -d /tmp/hoist-bench-agent.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${BENCH_KEEP_LOG:-}" ] && cp "$WORK/agent.log" "$BENCH_KEEP_LOG" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# Start a background command in its own process group; remember the group.
spawn() {
    setsid "$@" &
    PIDS+=($!)
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
        sleep 0.05
    done
}
now_ms() { date +%s%3N; }

# --- build -------------------------------------------------------------------
say "building hoist-agent (profile agent), hoist and hello (release)"
# The agent as it is packaged (profile `agent`: optimised for size, see Cargo.toml).
(cd "$REPO" && cargo build --profile agent --quiet -p hoist-agent \
    && cargo build --release --quiet -p hoist-packager -p hello)
BIN=$CARGO_TARGET_DIR/release
AGENT=$CARGO_TARGET_DIR/agent/hoist-agent HOIST=$BIN/hoist HELLO=$BIN/hello

# --- a Debian root for dpkg --root ----------------------------------------------
ROOT=$WORK/root
if [ -d "$HOIST_CACHE/rootfs-minbase-bookworm/var/lib/dpkg" ]; then
    cp -a --reflink=auto "$HOIST_CACHE/rootfs-minbase-bookworm" "$ROOT"
else
    command -v debootstrap >/dev/null || die "no cached root and no debootstrap: run scripts/install-test-deps.sh"
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    say "debootstrap of a minbase root (~1 minute)"
    debootstrap --variant=minbase bookworm "$ROOT" "${mirror:-http://deb.debian.org/debian}" >/dev/null
fi

# --- S3 ----------------------------------------------------------------------
MOTO_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$MOTO_PORT
spawn moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1
wait_for 30 "moto" curl -sf "$ENDPOINT/"
AUTH='Authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0'
curl -sf -X PUT -H "$AUTH" "$ENDPOINT/releases" >/dev/null
curl -sf -X PUT -H "$AUTH" -H 'Content-Type: application/xml' --data-binary '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' \
    "$ENDPOINT/releases?versioning" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
: >"$WORK/aws-empty" # no profile files: the credentials come from the environment
export AWS_CONFIG_FILE=$WORK/aws-empty AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-empty
unset AWS_ENDPOINT_URL AWS_PROFILE

# --- packages ----------------------------------------------------------------
# build_deb VERSION [PAYLOAD_FILE]: a `hello` package around the release binary.
build_deb() {
    local version=$1 payload=${2:-} dir=$WORK/pkg-$1
    mkdir -p "$dir"
    {
        printf '[package]\nname = "hello"\nversion = "%s"\nmaintainer = "bench <bench@example.invalid>"\nlicense = "MIT"\n' "$version"
        printf 'description = """\nhello for the agent benchmark\nBuilt by bench/agent.sh."""\n\n'
        printf '[[binaries]]\nsource = "%s"\n' "$HELLO"
        if [ -n "$payload" ]; then
            printf '\n[[files]]\nsource = "%s"\ndest = "/usr/share/hello/payload.bin"\nmode = "0644"\n' "$payload"
        fi
    } >"$dir/hoist.toml"
    "$HOIST" build --manifest "$dir/hoist.toml" --out-dir "$dir/dist" --compression gzip 2>/dev/null
}
minisign -G -W -p "$WORK/bench.pub" -s "$WORK/bench.key" >/dev/null
release() { # release DEB → prints the VersionId
    "$HOIST" release --deb "$1" --bucket releases --key hello/hello.deb --endpoint "$ENDPOINT" --path-style \
        --sign-key "$WORK/bench.key" 2>/dev/null
}

# --- agent and service ---------------------------------------------------------
HELLO_PORT=$(free_port)
PIDFILE=$WORK/hello.pid
cat >"$WORK/agent.toml" <<EOF
state_dir = "$WORK/state"
interval = "$INTERVAL"
[dpkg]
root = "$ROOT"

[[watch]]
name = "hello"
package = "hello"
s3 = { bucket = "releases", key = "hello/hello.deb", endpoint = "$ENDPOINT", path_style = true, region = "us-east-1" }
public_key = "$(sed -n 2p "$WORK/bench.pub")"
signal = { kind = "pidfile", path = "$PIDFILE" }
health = { kind = "http", url = "http://127.0.0.1:$HELLO_PORT/healthz", within = "10s" }
EOF
"$AGENT" check-config --config "$WORK/agent.toml" >/dev/null

installed() { [ "$(dpkg-query --root="$ROOT" -W -f '${Version} ${Status}' hello 2>/dev/null)" = "$1 install ok installed" ]; }
serving_pid() { curl -sf "http://127.0.0.1:$HELLO_PORT/" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

release "$(build_deb 1.0.0)" >/dev/null
spawn env RUST_LOG="${AGENT_RUST_LOG:-warn}" "$AGENT" --config "$WORK/agent.toml" run >"$WORK/agent.log" 2>&1
AGENT_PID=${PIDS[-1]}
wait_for 60 "the agent to install hello 1.0.0" installed 1.0.0
spawn "$ROOT/usr/bin/hello" --listen "127.0.0.1:$HELLO_PORT" --pidfile "$PIDFILE" >"$WORK/hello.log" 2>&1
wait_for 20 "hello to serve" serving_pid

# --- 1. idle polling -------------------------------------------------------------
say "idle polling every $INTERVAL for ${IDLE_SECONDS}s"
sleep 5 # let start-up allocations settle before the window opens
requests() { grep -c "\"$1 /releases/hello/hello.deb" "$WORK/moto.log" || true; }
heads0=$(requests HEAD); gets0=$(requests GET)
ticks0=$(cpu_ticks "$AGENT_PID"); t0=$(now_ms); samples=0; sum=0; max=0
while [ $(( $(now_ms) - t0 )) -lt $((IDLE_SECONDS * 1000)) ]; do
    r=$(rss_kib "$AGENT_PID"); samples=$((samples + 1)); sum=$((sum + r)); [ "$r" -gt "$max" ] && max=$r
    sleep 2
done
ticks1=$(cpu_ticks "$AGENT_PID"); t1=$(now_ms)
idle_heads=$(( $(requests HEAD) - heads0 )); idle_gets=$(( $(requests GET) - gets0 ))
idle_anon=$(status_kib "$AGENT_PID" RssAnon); idle_file=$(status_kib "$AGENT_PID" RssFile)
# Resident KiB per mapped file (the binary, libc, ...), largest first.
idle_by_file=$(awk '$1 ~ /^[0-9a-f]+-[0-9a-f]+$/ {file = ($6 ~ /^\//) ? $6 : ""} $1 == "Rss:" && file != "" {rss[file] += $2}
    END {for (f in rss) printf "%d %s\n", rss[f], f}' "/proc/$AGENT_PID/smaps" | sort -rn | head -n 4)
hz=$(getconf CLK_TCK)
idle_mean=$((sum / samples))
idle_cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" -v ms=$((t1 - t0)) 'BEGIN{printf "%.3f", 100 * t / hz / (ms / 1000)}')
idle_cpu_s=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" 'BEGIN{printf "%.2f", t / hz}')

# --- 2. a big package --------------------------------------------------------------
say "downloading and installing a ${BIG_MB} MB package"
head -c $((BIG_MB * 1000 * 1000)) /dev/urandom >"$WORK/payload.bin"
big_deb=$(build_deb 1.1.0 "$WORK/payload.bin")
rm -f "$WORK/payload.bin"
before_big=$(rss_kib "$AGENT_PID")
echo 5 >"/proc/$AGENT_PID/clear_refs" # resets VmHWM (peak RSS) to the current RSS
release "$big_deb" >/dev/null
wait_for 600 "the big package to be installed" installed 1.1.0
big_peak=$(hwm_kib "$AGENT_PID")
big_size=$(stat -c %s "$big_deb")
rm -rf "$WORK/pkg-1.1.0"

# --- 3. release → serving --------------------------------------------------------
say "$RELEASES releases, each timed until the new process serves"
latencies=()
for i in $(seq 1 "$RELEASES"); do
    version="2.0.$i"
    deb=$(build_deb "$version")
    old=$(serving_pid)
    # Release at a random moment of the agent's poll cycle (as releases happen): right
    # after the previous install the agent is at the start of its cycle.
    sleep "$(awk -v i="${INTERVAL%s}" -v r="$RANDOM" 'BEGIN{printf "%.3f", i * r / 32768}')"
    release "$deb" >/dev/null
    t0=$(now_ms)
    wait_for 120 "hello $version to serve" bash -c "installed() { [ \"\$(dpkg-query --root='$ROOT' -W -f '\${Version} \${Status}' hello 2>/dev/null)\" = '$version install ok installed' ]; }; installed && p=\$(curl -sf http://127.0.0.1:$HELLO_PORT/ | sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p') && [ -n \"\$p\" ] && [ \"\$p\" != '$old' ]"
    latencies+=($(( $(now_ms) - t0 )))
    rm -rf "$WORK/pkg-$version"
done
sorted=$(printf '%s\n' "${latencies[@]}" | sort -n)
median=$(printf '%s\n' "$sorted" | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2) }')
fmt_s() { awk -v ms="$1" 'BEGIN{printf "%.2f s", ms / 1000}'; }

# --- report ------------------------------------------------------------------------
kib_mib() { awk -v k="$1" 'BEGIN{printf "%.1f MiB", k / 1024}'; }
echo
echo "hoist-agent benchmark ($(nproc) cores, interval $INTERVAL)"
echo "  idle polling, ${IDLE_SECONDS}s:   RSS mean $(kib_mib $idle_mean), max $(kib_mib $max) (target <= 12 MiB); CPU ${idle_cpu_s} s = ${idle_cpu} %"
echo "      S3 requests meanwhile: $idle_heads HEAD, $idle_gets GET (target: one HEAD per poll, no GET)"
echo "      at the end: anonymous $(kib_mib "$idle_anon"), file-backed (binary and libraries) $(kib_mib "$idle_file")"
while read -r kib file; do echo "        $(kib_mib "$kib")  $file"; done <<<"$idle_by_file"
echo "  ${BIG_MB} MB package (.deb $((big_size / 1000000)) MB): RSS before $(kib_mib "$before_big"), peak $(kib_mib "$big_peak"), +$(kib_mib $((big_peak - before_big))) (target <= +16 MiB)"
echo "  release -> serving, $RELEASES releases: median $(fmt_s "$median"), min $(fmt_s "$(printf '%s\n' "$sorted" | head -1)"), max $(fmt_s "$(printf '%s\n' "$sorted" | tail -1)") (target median <= $(awk -v i="${INTERVAL%s}" 'BEGIN{print i/2 + 2}') s)"
echo "  each: $(printf '%s ' "${latencies[@]}") ms"
if grep -qE ' (ERROR|WARN) ' "$WORK/agent.log"; then
    echo "  agent warnings/errors:"; grep -E ' (ERROR|WARN) ' "$WORK/agent.log" | sed 's/^/    /' | tail -5
fi

#!/usr/bin/env bash
# Transfer benchmark: Cairn against rclone, aria2c and stac-asset, in one run,
# from the same loopback nginx, with 8 transfers at once for every tool.
# Prints wall time, throughput and peak memory (RSS) of each.
#
#   bench/transfer/run.sh [big|small|both]      (default both)
#
#   big:   20 files of 200 MB     targets: at least the best peer's throughput
#   small: 20,000 files of 20 KB  targets: at least 2x stac-asset, at least rclone
#   peak memory under 200 MB for Cairn in both.
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
WHICH=${1:-both}
WORK=${CAIRN_BENCH_DIR:-$REPO/bench/out/transfer}
PORT=${CAIRN_BENCH_PORT:-18472}
AT_ONCE=8
# Runs of each tool; the median is reported (this kind of machine is noisy).
ROUNDS=${CAIRN_BENCH_ROUNDS:-3}
# Where the tools write. By default a RAM file system when it has room, so
# that the figures compare the tools rather than the disk: on ext4, a tool
# that creates files within a minute of 20,000 others being deleted pays for
# the kernel skipping the recently freed inodes, whichever tool it is.
if [ -z "${CAIRN_BENCH_DEST:-}" ] && [ -d /dev/shm ] \
    && [ "$(df --output=avail -B1G /dev/shm | tail -n 1)" -ge 6 ]; then
    DEST=/dev/shm/cairn-bench
else
    DEST=${CAIRN_BENCH_DEST:-$WORK/dest}
fi

ensure_cargo
ensure_venv
# stac-asset pins an older botocore than moto's boto3 wants: its own venv.
BENCH_VENV="$REPO/.venv/bench"
if [ ! -x "$BENCH_VENV/bin/stac-asset" ]; then
    say "Installing stac-asset 0.4.8 into .venv/bench"
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "stac-asset[cli]==0.4.8"
fi
ensure_apt nginx nginx-light
ensure_apt /usr/bin/time time
ensure_apt rclone rclone
ensure_apt aria2c aria2

say "Building cairn (release)"
(cd "$REPO" && cargo build --release --quiet)
CAIRN="$REPO/target/release/cairn"
PY="$REPO/.venv/bin/python"
BASE="http://127.0.0.1:$PORT"

source "$REPO/bench/nginx.sh"
start_nginx "$WORK" "$WORK/data" "$PORT"
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$DEST"' EXIT

# measure NAME COMMAND...: runs COMMAND under /usr/bin/time; prints "seconds peak_kb".
measure() {
    local name=$1; shift
    local timing="$WORK/$name.time"
    /usr/bin/time -f "%e %M" -o "$timing" "$@" > "$WORK/$name.log" 2>&1 || {
        say "$name failed; its output is in $WORK/$name.log"
        tail -n 5 "$WORK/$name.log" >&2
        echo "nan 0"
        return
    }
    cat "$timing"
}

# files_in DIR: "count bytes" of the regular files under DIR, .json excluded.
files_in() {
    find "$1" -type f ! -name '*.json' -printf '%s\n' 2>/dev/null | awk '{n++; s+=$1} END {printf "%d %.0f\n", n, s}'
}

run_scenario() {
    local scenario=$1
    local data="$WORK/data/$scenario"
    if [ ! -f "$data/items.json" ]; then
        say "Generating the $scenario files"
        rm -rf "$data"
        "$PY" "$REPO/bench/transfer/generate.py" "$data" "$BASE/$scenario" "$scenario"
    fi
    read -r expect_n expect_bytes < <(files_in "$data/files")
    local results="$WORK/$scenario.results"
    : > "$results"
    rm -rf "$DEST"
    local out

    # tool NAME COMMAND...: a clean destination, one measured run, then a
    # check that every file arrived.
    tool() {
        local name=$1; shift
        out="$DEST/$name"
        rm -f "$WORK/state.db"*; mkdir -p "$out"
        # Every tool starts with the served files in the page cache.
        find "$data/files" -type f -exec cat {} + > /dev/null
        sync
        say "$scenario: $name (round $round of $ROUNDS)"
        read -r seconds kb < <(measure "$scenario-$name" "$@")
        read -r n bytes < <(files_in "$out")
        if [ "$n" != "$expect_n" ] || [ "$bytes" != "$expect_bytes" ]; then
            say "$name left $n files ($bytes bytes) of $expect_n ($expect_bytes bytes)"
            seconds=nan
        fi
        echo "$name $seconds $kb" >> "$results"
        rm -rf "$out"
    }

    # Rounds in turn, so that a slow spell of the machine hits every tool.
    local round
    for round in $(seq "$ROUNDS"); do
        tool cairn "$CAIRN" --state "$WORK/state.db" mirror "$BASE/$scenario/items.json" "$DEST/cairn" \
            --concurrency "$AT_ONCE" --per-host "$AT_ONCE" --json
        tool rclone rclone copy --http-url "$BASE/$scenario/files/" :http: "$DEST/rclone" \
            --transfers "$AT_ONCE" --checkers "$AT_ONCE"
        tool aria2c aria2c --input-file "$data/urls.txt" --dir "$DEST/aria2c" --max-concurrent-downloads "$AT_ONCE" \
            --allow-overwrite=true --auto-file-renaming=false --console-log-level=warn \
            --summary-interval=0 --file-allocation=none
        tool stac-asset "$BENCH_VENV/bin/stac-asset" download --quiet \
            --max-concurrent-downloads "$AT_ONCE" "$data/items.json" "$DEST/stac-asset"
    done

    "$PY" - "$scenario" "$expect_n" "$expect_bytes" "$results" "$DEST" <<'PY'
import sys
scenario, n, size, path, dest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = {}
for line in open(path):
    name, seconds, kb = line.split()
    runs.setdefault(name, []).append((float(seconds), int(kb)))

def median(values):
    values = sorted(values)
    return values[len(values) // 2]

rows = [(name, median([s for s, _ in r]), max(kb for _, kb in r)) for name, r in runs.items()]
rounds = max(len(r) for r in runs.values())
print(f"\n{scenario}: {n:,} files, {size / 1e6:,.0f} MB, over loopback HTTP (nginx), 8 at once, into {dest}")
print(f"median of {rounds} runs each (all runs: {path}); peak memory is the highest of the runs\n")
print(f"{'tool':<12} {'seconds':>9} {'MB/s':>9} {'files/s':>9} {'peak MiB':>9}")
for name, s, kb in rows:
    rate = size / 1e6 / s if s == s else float("nan")
    print(f"{name:<12} {s:>9.2f} {rate:>9.1f} {n / s:>9.0f} {kb / 1024:>9.1f}")
speed = {name: size / s for name, s, _ in rows if s == s}
cairn = speed.get("cairn", 0)
peers = {k: v for k, v in speed.items() if k != "cairn"}
cairn_mib = next(kb for name, _, kb in rows if name == "cairn") / 1024
print()
if scenario == "big" and peers:
    best = max(peers, key=peers.get)
    print(f"cairn {cairn / peers[best]:.2f}x the best peer ({best}); target: at least 1x")
if scenario == "small":
    for peer, factor in (("stac-asset", 2), ("rclone", 1)):
        if peer in peers:
            print(f"cairn {cairn / peers[peer]:.2f}x {peer}; target: at least {factor}x")
print(f"cairn peak memory {cairn_mib:.1f} MiB; target: under 200 MiB")
PY
}

case "$WHICH" in
    big|small) run_scenario "$WHICH" ;;
    both) run_scenario big; run_scenario small ;;
    *) echo "usage: $0 [big|small|both]" >&2; exit 2 ;;
esac

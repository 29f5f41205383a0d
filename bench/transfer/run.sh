#!/usr/bin/env bash
# Transfer benchmark: Cairn against rclone, aria2c and stac-asset, in one run,
# from the same loopback nginx, with 8 transfers at once for every tool.
# Prints wall time, throughput and peak memory (RSS) of each.
#
#   bench/transfer/run.sh [SCENARIO...|both|all]      (default both)
#
#   big:    20 files of 200 MB, one asset per item
#           target: at least the best peer's throughput
#   small:  20,000 files of 20 KB, ten assets per item, sizes and checksums
#           targets: at least 2x stac-asset, at least rclone
#   one:    the same files, one asset per item, sizes given, one item collection
#           target: within 1.1x rclone's time
#   nosize: the same, without file:size or checksums
#   static: the same, a static collection linking 20,000 item files (twice
#           the requests), no sizes                target: within 1.4x rclone's
#   static-disk: static into a folder on disk (CAIRN_BENCH_DISK, default
#           bench/out/transfer) instead of RAM
#           target: within 1.3x of static into RAM
#   s3:     2,000 objects of 100 KB and 4 of 40 MB in an S3 bucket (moto on
#           loopback), one asset per item with s3:// hrefs, no sizes; against
#           rclone's S3 backend reading the same bucket (moto, a Python
#           server, bounds both)
#   peak memory for Cairn under 100 MB for big, under 200 MB in every other.
#   both: big and small; all: every scenario.
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
WHICH=("${@:-both}")
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
RAM_DEST=$DEST
# Where static-disk writes: a folder of its own inside CAIRN_BENCH_DISK.
DISK_DEST=${CAIRN_BENCH_DISK:-$WORK}/cairn-bench-disk

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
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$RAM_DEST" "$DISK_DEST"' EXIT

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

# files_in DIR: "count bytes" of the regular files under DIR, but for the
# catalog Cairn writes beside them (.json, items.parquet, provenance.jsonl).
files_in() {
    find "$1" -type f ! -name '*.json' ! -name items.parquet ! -name provenance.jsonl -printf '%s\n' 2>/dev/null \
        | awk '{n++; s+=$1} END {printf "%d %.0f\n", n, s}'
}

run_scenario() {
    local scenario=$1
    # Every shape of small files is the same 20,000 files, described anew.
    local files=$scenario catalog=items.json peers=(rclone aria2c stac-asset)
    DEST=$RAM_DEST
    case "$scenario" in
        one) files=small catalog=one.json peers=(rclone) ;;
        nosize) files=small catalog=nosize.json peers=(rclone) ;;
        static) files=small catalog=static/collection.json peers=(rclone) ;;
        static-disk) files=small catalog=static/collection.json peers=(rclone) DEST=$DISK_DEST ;;
        s3) peers=(rclone) ;;
    esac
    local data="$WORK/data/$files"
    if [ "$scenario" = s3 ]; then
        # moto holds its objects in memory: filled anew for each run.
        local s3_port=$((PORT + 1))
        "$REPO/.venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "$WORK/moto.log" 2>&1 &
        MOTO=$!
        trap 'kill $NGINX $MOTO 2>/dev/null || true; rm -rf "$RAM_DEST" "$DISK_DEST"' EXIT
        until curl -s -o /dev/null "http://127.0.0.1:$s3_port/"; do sleep 0.2; done
        say "Filling the S3 bucket"
        "$PY" "$REPO/bench/transfer/s3_fill.py" "$data" "http://127.0.0.1:$s3_port" bench
        export AWS_ENDPOINT="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
            AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false
        CAIRN_SOURCE="$data/items.json"
        RCLONE_SOURCE=(":s3:bench/files" --s3-provider Other --s3-endpoint "$AWS_ENDPOINT"
            --s3-access-key-id bench --s3-secret-access-key bench --s3-region us-east-1
            --s3-force-path-style)
    elif [ ! -f "$data/items.json" ] || { [ "$files" = small ] && [ ! -f "$data/static/collection.json" ]; }; then
        say "Generating the $files files"
        rm -rf "$data"
        "$PY" "$REPO/bench/transfer/generate.py" "$data" "$BASE/$files" "$files"
    fi
    if [ "$scenario" != s3 ]; then
        CAIRN_SOURCE="$BASE/$files/$catalog"
        RCLONE_SOURCE=(--http-url "$BASE/$files/files/" :http:)
    fi
    read -r expect_n expect_bytes < <(files_in "$data/files")
    local results="$WORK/$scenario.results"
    : > "$results"
    rm -rf "$DEST"
    local out
    # On disk, each run writes into a folder of its own, and the folders go
    # only once every round is over: a run that creates its files within a
    # minute of another run's 20,000 being deleted pays for ext4 skipping
    # the recently freed inodes (most on a file system without a journal,
    # where it reads each one's inode), which measures the order of the runs
    # rather than the tools. (A RAM folder has no such cost, and its room
    # is needed; 20 big files make no such difference, and take much room.)
    local run="" keep=false
    if [ "$files" = small ] && { [ "$DEST" = "$DISK_DEST" ] || [[ "$DEST" != /dev/shm/* ]]; }; then
        keep=true
    fi

    # tool NAME COMMAND...: a clean destination, one measured run, then a
    # check that every file arrived.
    tool() {
        local name=$1; shift
        out="$DEST/$name$run"
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
        $keep || rm -rf "$out"
    }

    # Rounds in turn, so that a slow spell of the machine hits every tool.
    local round
    for round in $(seq "$ROUNDS"); do
        $keep && run="-$round"
        tool cairn "$CAIRN" --state "$WORK/state.db" mirror "$CAIRN_SOURCE" "$DEST/cairn$run" \
            --concurrency "$AT_ONCE" --per-host "$AT_ONCE" --json
        # rclone's S3 client refuses to start with a CA bundle it cannot load.
        tool rclone env -u AWS_CA_BUNDLE rclone copy "${RCLONE_SOURCE[@]}" "$DEST/rclone$run" \
            --transfers "$AT_ONCE" --checkers "$AT_ONCE"
        if [[ " ${peers[*]} " == *" aria2c "* ]]; then
            tool aria2c aria2c --input-file "$data/urls.txt" --dir "$DEST/aria2c$run" --max-concurrent-downloads "$AT_ONCE" \
                --allow-overwrite=true --auto-file-renaming=false --console-log-level=warn \
                --summary-interval=0 --file-allocation=none
        fi
        if [[ " ${peers[*]} " == *" stac-asset "* ]]; then
            tool stac-asset "$BENCH_VENV/bin/stac-asset" download --quiet \
                --max-concurrent-downloads "$AT_ONCE" "$data/items.json" "$DEST/stac-asset$run"
        fi
    done
    $keep && rm -rf "$DEST"

    "$PY" - "$scenario" "$expect_n" "$expect_bytes" "$results" "$DEST" "$WORK/static.results" <<'PY'
import sys
scenario, n, size, path, dest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ram_results = sys.argv[6]
runs = {}
for line in open(path):
    name, seconds, kb = line.split()
    runs.setdefault(name, []).append((float(seconds), int(kb)))

def median(values):
    values = sorted(values)
    return values[len(values) // 2]

rows = [(name, median([s for s, _ in r]), max(kb for _, kb in r)) for name, r in runs.items()]
rounds = max(len(r) for r in runs.values())
shapes = {
    "big": "one asset per item, sizes and checksums, one item collection",
    "small": "ten assets per item, sizes and checksums, one item collection",
    "one": "one asset per item, sizes given, one item collection",
    "nosize": "one asset per item, no sizes, one item collection",
    "static": "one asset per item, no sizes, a static collection of item files",
    "static-disk": "one asset per item, no sizes, a static collection of item files, into a folder on disk",
    "s3": "objects in an S3 bucket (moto), one asset per item with s3:// hrefs, no sizes, one item collection",
}
server = "S3 (moto)" if scenario == "s3" else "HTTP (nginx)"
print(f"\n{scenario}: {n:,} files, {size / 1e6:,.0f} MB ({shapes[scenario]}), over loopback {server}, 8 at once, into {dest}")
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
seconds = {name: s for name, s, _ in rows}
def verdict(ratio, limit):
    return "met" if ratio <= limit else "not met"
limits = {"one": 1.1, "nosize": 1.1, "static": 1.4, "static-disk": 1.4}
if scenario in limits and "rclone" in seconds:
    ratio = seconds["cairn"] / seconds["rclone"]
    print(f"cairn takes {ratio:.2f}x rclone's time; target: at most {limits[scenario]}x ({verdict(ratio, limits[scenario])})")
if scenario == "s3" and "rclone" in seconds:
    print(f"cairn {seconds['rclone'] / seconds['cairn']:.2f}x rclone's speed from the same bucket")
if scenario == "static-disk":
    try:
        ram = median([float(line.split()[1]) for line in open(ram_results) if line.startswith("cairn ")])
        ratio = seconds["cairn"] / ram
        print(f"cairn into a folder on disk takes {ratio:.2f}x its time into RAM; target: at most 1.3x ({verdict(ratio, 1.3)})")
    except (OSError, ValueError, IndexError):
        print("run the static scenario first to compare the disk with RAM")
# Big files stream through a bounded pipeline: under 100 MB; the rest, whose
# memory follows the plan and the write-out, under 200 MB.
memory_limit_mb = 100 if scenario == "big" else 200
cairn_mb = cairn_mib * 1024 * 1024 / 1e6
# A run that did not finish its copy says nothing of the peak.
if any(s != s for s, _ in runs.get("cairn", [])):
    memory_verdict = "not measured: a run of cairn failed"
else:
    memory_verdict = "met" if cairn_mb < memory_limit_mb else "not met"
print(f"cairn peak memory {cairn_mib:.1f} MiB ({cairn_mb:.1f} MB); target: under {memory_limit_mb} MB ({memory_verdict})")
PY
}

SCENARIOS=()
for which in "${WHICH[@]}"; do
    case "$which" in
        big|small|one|nosize|static|static-disk|s3) SCENARIOS+=("$which") ;;
        both) SCENARIOS+=(big small) ;;
        all) SCENARIOS+=(big small one nosize static static-disk s3) ;;
        *) echo "usage: $0 [big|small|one|nosize|static|static-disk|s3|both|all]..." >&2; exit 2 ;;
    esac
done
for scenario in "${SCENARIOS[@]}"; do
    run_scenario "$scenario"
done

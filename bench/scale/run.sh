#!/usr/bin/env bash
# Scale benchmark: does Cairn's time grow with the job and no faster, and does
# its memory stay flat? Mirrors generated collections of 20,000, 200,000 and
# 1,000,000 one-asset items (no file:size) from a loopback nginx, and prints
# the time, the rate, the peak memory and the ratio of each size's time per
# item to the smallest one's.
#
#   bench/scale/run.sh [CASE...]      (default: all)
#
#   static-20000 static-200000      a static collection linking item files
#   pages-20000 pages-200000 pages-1000000
#                                   an item list in pages of 1,000 chained by
#                                   `next` links (what an API serves)
#   file-100000                     one item-collection file
#
# Targets: peak under 150 MB for static-200000 and file-100000, under 200 MB
# for pages-1000000; time per item at most 1.1x the 20,000-item figure of
# the same shape (linear time).
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
CASES=("${@:-static-20000 static-200000 file-100000 pages-20000 pages-200000 pages-1000000}")
# shellcheck disable=SC2206
CASES=(${CASES[*]})
WORK=${CAIRN_BENCH_DIR:-$REPO/bench/out/scale}
PORT=${CAIRN_BENCH_PORT:-18473}
AT_ONCE=8
# A million items leave two million files and a million folders: a RAM file
# system when it has room for them (its bytes and its count of files),
# else the disk.
if [ -z "${CAIRN_BENCH_DEST:-}" ] && [ -d /dev/shm ] \
    && [ "$(df --output=avail -B1G /dev/shm | tail -n 1)" -ge 14 ] \
    && [ "$(df --output=iavail /dev/shm | tail -n 1)" -ge 3020000 ]; then
    DEST=/dev/shm/cairn-scale
else
    DEST=${CAIRN_BENCH_DEST:-$WORK/dest}
fi

ensure_cargo
ensure_venv
ensure_apt nginx nginx-light
ensure_apt /usr/bin/time time

say "Building cairn (release)"
(cd "$REPO" && cargo build --release --quiet)
CAIRN="$REPO/target/release/cairn"
PY="$REPO/.venv/bin/python"
BASE="http://127.0.0.1:$PORT"

mkdir -p "$WORK/data"
# Every asset of every case is this one file of 1 KiB.
[ -f "$WORK/data/asset.bin" ] || head -c 1024 /dev/urandom > "$WORK/data/asset.bin"
source "$REPO/bench/nginx.sh"
start_nginx "$WORK" "$WORK/data" "$PORT" 'location ~ /assets/[^/]+\.bin$ { try_files /asset.bin =404; }'
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$DEST"' EXIT

RESULTS="$WORK/results"
: > "$RESULTS"
for case in "${CASES[@]}"; do
    shape=${case%-*} count=${case##*-}
    data="$WORK/data/$case"
    if [ ! -f "$data/done" ]; then
        say "Generating $case"
        rm -rf "$data"
        "$PY" "$REPO/bench/scale/generate.py" "$data" "$BASE/$case" "$shape" "$count"
    fi
    case "$shape" in
        file) catalog=items.json ;;
        *) catalog=collection.json ;;
    esac
    rm -rf "$DEST" "$WORK/state.db"*
    mkdir -p "$DEST"
    sync
    say "$case: cairn mirror"
    if /usr/bin/time -f "%e %M" -o "$WORK/$case.time" "$CAIRN" --state "$WORK/state.db" \
        mirror "$BASE/$case/$catalog" "$DEST/mirror" --concurrency "$AT_ONCE" --per-host "$AT_ONCE" \
        --json > "$WORK/$case.log" 2>&1; then
        read -r seconds kb < "$WORK/$case.time"
        files=$(find "$DEST/mirror" -name '*.bin' -type f | wc -l)
        [ "$files" = "$count" ] || { say "$case left $files of $count assets"; seconds=nan; }
    else
        say "$case failed; its output is in $WORK/$case.log"
        tail -n 5 "$WORK/$case.log" >&2
        seconds=nan kb=0
    fi
    echo "$shape $count $seconds $kb" >> "$RESULTS"
    rm -rf "$DEST"
done

"$PY" - "$RESULTS" "$DEST" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
shapes = {
    "static": "a static collection linking one file per item",
    "pages": "pages of 1,000 items chained by next links",
    "file": "one item-collection file",
}
print(f"\nscale: one asset of 1 KiB per item, no file:size, over loopback HTTP (nginx), 8 at once, into {sys.argv[2]}\n")
print(f"{'shape':<8} {'items':>9} {'seconds':>9} {'items/s':>9} {'peak MiB':>9} {'per item vs smallest':>21}")
smallest = {}
for shape, count, seconds, kb in rows:
    count, seconds, mib = int(count), float(seconds), int(kb) / 1024
    per_item = seconds / count
    base = smallest.setdefault(shape, (count, per_item))
    ratio = per_item / base[1] if base[1] == base[1] else float("nan")
    print(f"{shape:<8} {count:>9,} {seconds:>9.1f} {count / seconds:>9.0f} {mib:>9.1f} {ratio:>20.2f}x")
print()
limits = {("static", 200000): 150, ("file", 100000): 150, ("pages", 1000000): 200}
for shape, count, seconds, kb in rows:
    count, mib = int(count), int(kb) / 1024
    if (shape, count) in limits:
        limit = limits[(shape, count)]
        if float(seconds) != float(seconds):
            verdict = "not measured: the run failed"
        else:
            verdict = "met" if mib * 1.048576 < limit else "not met"
        print(f"{shape} {count:,}: peak {mib:.0f} MiB; target: under {limit} MB ({verdict})")
for shape, (count, per_item) in smallest.items():
    for other_shape, other, seconds, _ in rows:
        other = int(other)
        if other_shape == shape and other != count:
            ratio = float(seconds) / other / per_item
            if ratio != ratio:
                verdict = "not measured: a run failed"
            else:
                verdict = "met" if ratio <= 1.1 else "not met"
            print(f"{shape} {other:,} items take {float(seconds) / (count * per_item):.1f}x the time of {count:,} "
                  f"({other / count:.0f}x the items): {ratio:.2f}x per item; target: at most 1.1x ({verdict})")
print(f"\n(shapes: {'; '.join(f'{k}: {v}' for k, v in shapes.items())})")
PY

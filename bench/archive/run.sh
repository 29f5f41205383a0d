#!/usr/bin/env bash
# Archive benchmark: how fast Cairn checks a mirror (`cairn verify`), writes
# its stac-geoparquet index (`cairn export --geoparquet`) and packs it into a
# BagIt bag (`cairn export --bagit`), beside the floor of the same work done
# by the system's own tools in the same run (`sha256sum` over the same
# files, two at a time as Cairn's verify runs on this 2-core machine, and
# bagit.py validating Cairn's bag).
#
#   bench/archive/run.sh [CASE...]      (default: all)
#
#   files-20000     a mirror of 20,000 files of 20 KB (one asset per item)
#   big-4g          a mirror of 20 files of 200 MB (4 GB)
#   index-100000    the index of a 100,000-item mirror (1 KiB assets)
#
# The mirrors are made by `cairn mirror` from generated local catalogs, on
# disk (bench/out/archive; set CAIRN_BENCH_DIR elsewhere), and checked from a
# warm page cache: the figures are Cairn's own cost, not the disk's.
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
CASES=("${@:-files-20000 big-4g index-100000}")
# shellcheck disable=SC2206
CASES=(${CASES[*]})
WORK=${CAIRN_BENCH_DIR:-$REPO/bench/out/archive}

ensure_cargo
ensure_venv
ensure_apt /usr/bin/time time

say "Building cairn (release)"
(cd "$REPO" && cargo build --release --quiet)
CAIRN="$REPO/target/release/cairn"
PY="$REPO/.venv/bin/python"
mkdir -p "$WORK"

elapsed() { # elapsed SECONDS_FILE COMMAND...: runs it, writes "seconds peak_kb"
    local out=$1
    shift
    /usr/bin/time -f "%e %M" -o "$out" "$@" > "$out.log" 2>&1
}

mirror_of() { # mirror_of CASE COUNT SIZE [FILES]: generated catalog, mirrored once
    local case=$1 count=$2 size=$3 files=${4:-$2}
    local data="$WORK/$case/source" dest="$WORK/$case/mirror"
    if [ ! -f "$data/done" ]; then
        say "$case: generating $count items of $size bytes"
        rm -rf "$data"
        "$PY" "$REPO/bench/archive/generate.py" "$data" "$count" "$size" "$files"
    fi
    if [ ! -f "$WORK/$case/mirrored" ]; then
        say "$case: cairn mirror"
        rm -rf "$dest" "$WORK/$case/state.db"*
        "$CAIRN" --state "$WORK/$case/state.db" mirror "$data/collection.json" "$dest" \
            --json > "$WORK/$case/mirror.log"
        touch "$WORK/$case/mirrored"
    fi
}

RESULTS="$WORK/results"
: > "$RESULTS"
for case in "${CASES[@]}"; do
    case "$case" in
        files-20000) mirror_of "$case" 20000 20000 ;;
        big-4g) mirror_of "$case" 20 200000000 ;;
        index-100000) mirror_of "$case" 100000 1024 1000 ;;
        *) say "unknown case $case"; exit 2 ;;
    esac
    dest="$WORK/$case/mirror" state="$WORK/$case/state.db"
    bytes=$(find "$dest" -name '*.bin' -type f -printf '%s\n' | awk '{s += $1} END {print s}')
    files=$(find "$dest" -name '*.bin' -type f | wc -l)
    # A warm page cache for every tool.
    find "$dest" -type f -print0 | xargs -0 cat > /dev/null
    if [ "$case" = index-100000 ]; then
        rm -f "$WORK/$case/index.parquet"
        elapsed "$WORK/$case/index.time" "$CAIRN" --state "$state" export "$dest" \
            --geoparquet "$WORK/$case/index.parquet" --json
        read -r seconds kb < "$WORK/$case/index.time"
        printf '%s\tcairn export --geoparquet\t%s items\t%s s\t%s MiB peak\n' "$case" "$files" "$seconds" \
            "$((kb / 1024))" | tee -a "$RESULTS"
        continue
    fi
    elapsed "$WORK/$case/verify.time" "$CAIRN" --state "$state" verify "$dest" --json
    read -r seconds kb < "$WORK/$case/verify.time"
    elapsed "$WORK/$case/sha.time" bash -c "find '$dest' -name '*.bin' -type f -print0 | xargs -0 -n 64 -P 2 sha256sum > /dev/null"
    read -r sha_seconds _ < "$WORK/$case/sha.time"
    rm -rf "$WORK/$case/bag"
    elapsed "$WORK/$case/bag.time" "$CAIRN" --state "$state" export "$dest" --bagit "$WORK/$case/bag" --json
    read -r bag_seconds bag_kb < "$WORK/$case/bag.time"
    elapsed "$WORK/$case/bagit.time" "$PY" -m bagit --validate --processes 2 "$WORK/$case/bag"
    read -r bagit_seconds _ < "$WORK/$case/bagit.time"
    rm -rf "$WORK/$case/bag"
    awk -v c="$case" -v b="$bytes" -v f="$files" -v s="$seconds" -v k="$kb" -v h="$sha_seconds" \
        -v g="$bag_seconds" -v gk="$bag_kb" -v v="$bagit_seconds" 'BEGIN {
        printf "%s\tcairn verify\t%d files, %.2f GB\t%.2f s\t%.2f GB/s\t%.0f files/s\t%d MiB peak\n", c, f, b / 1e9, s, b / 1e9 / s, f / s, k / 1024
        printf "%s\tsha256sum x2\t\t%.2f s\t%.2f GB/s\t%.0f files/s\n", c, h, b / 1e9 / h, f / h
        printf "%s\tcairn export --bagit\t\t%.2f s\t%.2f GB/s\t%.0f files/s\t%d MiB peak\n", c, g, b / 1e9 / g, f / g, gk / 1024
        printf "%s\tbagit.py --validate\t\t%.2f s\t%.2f GB/s\t%.0f files/s\n", c, v, b / 1e9 / v, f / v
    }' | tee -a "$RESULTS"
done
say "Results (also in $RESULTS)"
column -t -s $'\t' "$RESULTS"

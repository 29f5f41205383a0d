#!/usr/bin/env bash
# Hostile-document benchmark: peak memory of `cairn browse` and `cairn mirror`
# on a catalog that links a 62 KB compressed answer unpacking to a 64 MiB JSON
# document (bench/hostile/generate.py), served by a loopback web server that
# compresses its answers. Target: under 200 MB peak for both.
#
#   bench/hostile/run.sh
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
WORK=${CAIRN_BENCH_DIR:-$REPO/bench/out/hostile}
PORT=${CAIRN_BENCH_PORT:-18473}
TARGET_MB=200

ensure_cargo
ensure_apt /usr/bin/time time
say "Building cairn (release)"
(cd "$REPO" && cargo build --release --quiet)
CAIRN="$REPO/target/release/cairn"

rm -rf "$WORK" && mkdir -p "$WORK/site"
python3 "$REPO/bench/hostile/generate.py" "$WORK/site"
wire=$(stat -c %s "$WORK/site/bomb/collection.json.gz")
unpacked=$(gzip -dc "$WORK/site/bomb/collection.json.gz" | wc -c)
python3 "$REPO/bench/hostile/serve.py" "$WORK/site" "$PORT" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$PORT/catalog.json" >/dev/null 2>&1 && break
    sleep 0.1
done

measure() {
    # measure NAME COMMAND...: prints NAME, exit code, seconds and peak RSS.
    local name=$1
    shift
    local code=0
    /usr/bin/time -f "%e %M" -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || code=$?
    read -r seconds kib < <(tail -n 1 "$WORK/$name.time")
    local mb=$((kib / 1024))
    local verdict="met"
    [ "$mb" -lt "$TARGET_MB" ] || verdict="NOT met"
    printf '%-8s exit %s  %6s s  peak %4s MB  (target < %s MB: %s)\n' "$name" "$code" "$seconds" "$mb" "$TARGET_MB" "$verdict"
}

echo "The bomb: $wire bytes on the wire, $unpacked bytes unpacked."
measure browse "$CAIRN" --state "$WORK/cairn.db" browse "http://127.0.0.1:$PORT/catalog.json"
measure mirror "$CAIRN" --state "$WORK/cairn.db" mirror "http://127.0.0.1:$PORT/catalog.json" "$WORK/mirror"
echo "What Cairn said of the bomb:"
grep -h -A1 "bomb" "$WORK/browse.out" "$WORK/browse.err" | head -n 4 | sed 's/^/  /'

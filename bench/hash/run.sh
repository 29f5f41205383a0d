#!/usr/bin/env bash
# Hash benchmark: SHA-256 and SHA-512 as Cairn computes them (the sha2
# crate) beside ring (OpenSSL's assembly), on this machine, in one run.
# Prints GB/s for each over 2 GiB hashed in 256 KiB pieces (the size of
# Cairn's reads), median of 5 passes.
#
#   bench/hash/run.sh
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
ensure_cargo
cd "$REPO"
say "Building the hash benchmark (release)"
cargo build --release --quiet --example hash_speed
exec "$REPO/target/release/examples/hash_speed"

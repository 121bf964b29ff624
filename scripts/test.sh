#!/usr/bin/env bash
# Runs every test of Switchboard. Installs what the tests need first (Debian packages), so it
# works on a machine that has never seen the project. Needs root for apt-get (or the packages
# already installed) and kubectl 1.32 at /usr/bin/kubectl (or on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg_cmd in jq:jq curl:curl python3:python3 sqlite3:sqlite3 iproute2:ip procps:sysctl nftables:nft conntrack:conntrack socat:socat bind9-dnsutils:dig dnsmasq-base:dnsmasq arping:arping ndisc6:ndisc6; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl (1.32) is required on PATH for the API tests" >&2
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo (stable Rust) is required" >&2
  exit 1
fi

# A run from a fresh checkout gains nothing from incremental-compilation caches, and they take
# tens of GB of disk across the workspace's test binaries (a full disk made the linker die).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"

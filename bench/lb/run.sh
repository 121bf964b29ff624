#!/usr/bin/env bash
# Failover benchmark of the L2 announcer (see README.md). Needs root (network namespaces),
# iproute2, nftables, curl and kubectl 1.32. Writes the summary to bench/lb/last-run.txt.
#   LB_BENCH_KILLS (20)           kills with Switchboard's settings
#   LB_BENCH_BASELINE_KILLS (5)   kills of the baseline (no gratuitous ARP; each takes 15-45 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
export LB_BENCH_OUT="$PWD/bench/lb/last-run.txt"
cargo test -p switchboard --test lb bench_failover -- --ignored --nocapture --test-threads=1
cat "$LB_BENCH_OUT"

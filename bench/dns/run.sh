#!/usr/bin/env bash
# Cluster DNS benchmark: Switchboard's DNS server vs dnsmasq, same names, same machine, same
# run, each pinned to ONE core (taskset), dnsperf on another core.
#
#   bench/dns/run.sh [SERVICES] [SECONDS]      (defaults: 1000 Services, 10 s per measurement)
#
# Switchboard serves a zone compiled from SERVICES ClusterIP Services (+1 headless Service with
# 3 endpoints per 10); dnsmasq serves the same names from a hosts file (--local=/cluster.local/
# so names it doesn't know are NXDOMAIN from memory, as ours are). Two query mixes:
#   hits:   every Service name, A                      (what pods ask once the search list hits)
#   storm:  the ndots:5 search-path misses, A           (<name>.<ns>.svc.cluster.local appended
#           to names that are already FQDNs: NXDOMAIN)
# and two load shapes: max throughput (dnsperf -q 200 outstanding), and latency at a fixed
# 20k queries/s (dnsperf -v, per-query latencies -> p50/p99). Rounds alternate the servers so
# background noise hits both. Results go to stdout and bench/dns/results-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
SECS=${2:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
for c in dnsperf dnsmasq taskset dig; do command -v $c >/dev/null || { echo "need $c (Debian: dnsperf dnsmasq-base util-linux bind9-dnsutils)"; exit 1; }; done

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p dns --example bench-server
work=$(mktemp -d /tmp/switchboard-bench-dns.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

SB_PORT=$((20000 + RANDOM % 10000)); DM_PORT=$((SB_PORT + 1))
taskset -c "$SERVER_CPU" target/release/examples/bench-server "127.0.0.1:$SB_PORT" "$N" "$work" 2>"$work/sb.log" &
pids+=($!)
sleep 1
taskset -c "$SERVER_CPU" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=127.0.0.1 --port="$DM_PORT" --user=root --pid-file= \
  --addn-hosts="$work/hosts" --local=/cluster.local/ --local-ttl=5 --cache-size=10000 \
  --dns-forward-max=1000 2>"$work/dm.log" &
pids+=($!)
for i in $(seq 50); do
  if dig +short +time=1 +tries=1 @127.0.0.1 -p "$SB_PORT" svc-1.bench.svc.cluster.local | grep -q . &&
     dig +short +time=1 +tries=1 @127.0.0.1 -p "$DM_PORT" svc-1.bench.svc.cluster.local | grep -q .; then break; fi
  sleep 0.2
done
# Same answer from both, or the comparison means nothing.
a=$(dig +short @127.0.0.1 -p "$SB_PORT" svc-7.bench.svc.cluster.local); b=$(dig +short @127.0.0.1 -p "$DM_PORT" svc-7.bench.svc.cluster.local)
[ "$a" = "$b" ] || { echo "answers differ: $a vs $b"; exit 1; }

sed 's/ A$//' "$work/queries" | awk '{print $1 ".bench.svc.cluster.local A"}' > "$work/storm"
cp "$work/queries" "$work/hits"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
max_qps() { # port file pid -> "qps lost queries_per_cpu_second"
  local t0 t1 res
  t0=$(cpu_ticks "$3")
  res=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$SECS" -c 4 -q 200 2>&1 |
    awk '/Queries per second/ {q=$4} /Queries lost/ {l=$3} /Queries completed/ {c=$3} END {print q, l, c}')
  t1=$(cpu_ticks "$3")
  # Queries answered per second of the server's own CPU time: what one core would sustain if
  # nothing else ran on it (this machine is shared; wall-clock qps is not).
  echo "$res" | awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '{printf "%s %s %.0f\n", $1, $2, (ticks > 0 ? $3 / (ticks / hz) : 0)}'
}
latency() { # port file -> "p50_us p99_us"
  taskset -c "$CLIENT_CPU" dnsperf -v -s 127.0.0.1 -p "$1" -d "$2" -l "$SECS" -c 1 -Q 20000 2>/dev/null |
    awk '$1 == ">" {print $NF * 1e6}' | sort -n |
    awk '{v[NR]=$1} END {if (NR == 0) {print "n/a n/a"; exit} printf "%.0f %.0f\n", v[int(NR*0.5)+1], v[int(NR*0.99)+1]}'
}

out="bench/dns/results-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# $(date -u) $(nproc) cores, $(uname -r); $N Services; ${SECS}s per measurement; server on cpu $SERVER_CPU, dnsperf on cpu $CLIENT_CPU"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf "%-6s %-5s %-12s %12s %8s %14s %8s %8s\n" round mix server qps lost qps_per_cpu_s p50_us p99_us
  for r in $(seq "$ROUNDS"); do
    for mix in hits storm; do
      for s in switchboard dnsmasq; do
        port=$SB_PORT; pid=${pids[0]}; [ "$s" = dnsmasq ] && port=$DM_PORT && pid=${pids[1]}
        read -r qps lost per_cpu < <(max_qps "$port" "$work/$mix" "$pid")
        read -r p50 p99 < <(latency "$port" "$work/$mix")
        printf "%-6s %-5s %-12s %12.0f %8s %14s %8s %8s\n" "$r" "$mix" "$s" "$qps" "$lost" "$per_cpu" "$p50" "$p99"
      done
    done
  done
  echo "# switchboard CPU time: $(ps -o times= -p "${pids[0]}")s, dnsmasq: $(ps -o times= -p "${pids[1]}")s"
} | tee "$out"

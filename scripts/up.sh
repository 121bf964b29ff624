#!/usr/bin/env bash
# Builds Switchboard and starts `switchboard up` (API server, controllers and the node agent) on
# this machine. Installs the Debian packages the node agent uses first (nft for the data plane,
# conntrack for UDP cleanup), so it works on a machine that has never seen the project. Extra
# arguments go to `switchboard up` (e.g. --data-dir, --listen).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg_cmd in nftables:nft conntrack:conntrack iproute2:ip; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "not root: skipping the install of ${need[*]}; the API runs, the node agent cannot program nftables" >&2
  fi
fi
exec cargo run --release -p switchboard -- up "$@"

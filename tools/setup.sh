#!/usr/bin/env bash
# Installs the Debian packages popgo's build, tests and lab need. Idempotent; quiet when
# everything is already there. Needs root (or sudo) only when something is missing.
set -euo pipefail
PKGS=(libelf-dev zlib1g-dev pkg-config tshark tcpdump iproute2 ethtool bpftool iputils-ping util-linux curl prometheus gobgpd frr valgrind)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

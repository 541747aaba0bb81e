#!/usr/bin/env bash
# Installs what internal/testbox needs on top of the daemons
# scripts/setup-test.sh installs: systemd-nspawn (systemd-container) and nft
# (nftables); iproute2, util-linux and tar are on every Debian machine.
# Idempotent. Without root or apt-get it says so and changes nothing: the
# testbox tests then skip (and fail under CI=true).
set -euo pipefail

packages=(systemd-container nftables iproute2 util-linux tar)

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "testbox-setup: not root on Debian/Ubuntu: not installing ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "testbox-setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "testbox-setup: systemd-nspawn and nft present"

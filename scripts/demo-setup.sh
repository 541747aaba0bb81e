#!/usr/bin/env bash
# Installs what `make demo` needs, from the distribution's packages: the
# package list of scripts/setup-test.sh (one list for tests and demo), but
# unlike setup-test it starts none of the machine's own daemons: the demo's
# services run inside its systemd container, and `make demo-stop` leaves the
# machine as it was. Idempotent.
set -euo pipefail
here="$(dirname "$0")"
eval "$(sed -n '/^packages=(/,/)/p' "$here/setup-test.sh")"
if [ "${#packages[@]}" -eq 0 ]; then
  echo "demo-setup: no package list in scripts/setup-test.sh" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "demo-setup: the demo needs root on Debian/Ubuntu (it boots a systemd container in a network namespace)" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo-setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string ci.example.test
SEL
  apt-get update -qq
  # policy-rc.d keeps the packages' daemons from starting on the machine.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi
echo "demo-setup: every package installed"

#!/usr/bin/env bash
# Installs and starts the real Debian daemons the integration tests talk to,
# without systemd (ENV.md: `service NAME start`). Idempotent: run it as often
# as you like. Without root or apt-get it says so and leaves the machine
# alone: the integration tests then skip (and fail under CI=true).
#
# --install-only (make demo): installs the same packages but starts none of
# the machine's daemons (the demo's run inside its systemd container, and
# `make demo-stop` leaves the machine as it was); it needs root.
set -euo pipefail
install_only=0
[ "${1:-}" = "--install-only" ] && install_only=1

packages=(prometheus prometheus-alertmanager apache2 dovecot-imapd dovecot-pop3d postfix
  mariadb-server openssh-server vsftpd xinetd rsyslog fail2ban spamd iputils-ping
  netcat-openbsd procps ssl-cert systemd-container nftables iproute2 docker-compose podman)

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  if [ $install_only = 1 ]; then
    echo "setup-test: the demo needs root on Debian/Ubuntu (it boots a systemd container in a network namespace)" >&2
    exit 1
  fi
  echo "setup-test: not root on Debian/Ubuntu: not installing daemons; integration tests will skip" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-test: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string ci.example.test
SEL
  apt-get update -qq
  # With --install-only, policy-rc.d keeps the packages' daemons from starting.
  had_policy=1
  if [ $install_only = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    had_policy=0
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi
if [ $install_only = 1 ]; then
  echo "setup-test: every package installed"
  exit 0
fi

# Extra daemon configuration the probe tests need (TLS vhosts, smtps, ...).
probe_cfg="$(dirname "$0")/../exporter/probe/testdata/configure-daemons.sh"
[ -x "$probe_cfg" ] && "$probe_cfg"

# rsyslog has no init script; fail2ban reads the logs it writes.
pgrep -x rsyslogd >/dev/null || rsyslogd
failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for svc in ssh apache2 mariadb postfix dovecot vsftpd xinetd spamd fail2ban; do
  if ! service "$svc" status >/dev/null 2>&1; then
    # dovecot keeps its stdio open: a file, never a pipe, takes its output.
    if ! service "$svc" start </dev/null >"$log" 2>&1; then
      failed+=("$svc")
      sed "s/^/setup-test: $svc: /" "$log" >&2
    fi
  fi
done
# A daemon that will not start fails here, by name, rather than as a
# confusing test failure later.
if [ ${#failed[@]} -gt 0 ]; then
  echo "setup-test: did not start: ${failed[*]}" >&2
  # fail2ban's init script says only "failed"; its reason is in its log.
  if [[ " ${failed[*]} " == *" fail2ban "* ]] && [ -r /var/log/fail2ban.log ]; then
    tail -n 3 /var/log/fail2ban.log >&2
  fi
  exit 1
fi
echo "setup-test: daemons running"

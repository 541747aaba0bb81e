#!/usr/bin/env bash
# The configuration the probe tests (exporter/probe) need on top of Debian's
# defaults. scripts/setup-test.sh runs it as root after installing the
# packages. Idempotent: a file is rewritten only when its content changes,
# and a daemon is restarted only when its configuration changed (started
# when it is not running), so running it again disturbs nothing.
#
#   - a test CA (/etc/ssl/mamori-test/ca.pem) and a server certificate for
#     localhost and 127.0.0.1 signed by it: the tests trust the CA through
#     --probe.tls-ca-file, so certificate verification is exercised for real;
#   - apache2: mod_ssl, an HTTPS vhost on 443 (the test certificate) and one
#     on 8443 with Debian's self-signed snakeoil certificate, as Plesk's
#     panel has, plus /mamori-redirect (a redirect to /);
#   - postfix: listens on every address (127.0.0.0/8 for the benchmark),
#     STARTTLS on 25 and SMTPS (implicit TLS) on 465 with the test certificate;
#   - dovecot: the test certificate on 993/995 and for STARTTLS/STLS;
#   - mariadb: listens on every address, and the probe account
#     'mamori_probe'@'127.%' (no password, no privileges: --probe.mysql-user);
#   - fail2ban: the default sshd, postfix and dovecot jails enabled, the
#     machine's own addresses not exempt (the tests prove the prober is not
#     banned), and the "dummy" ban action, so a ban is recorded but blocks
#     nothing on a shared test machine;
#   - sshd: MaxStartups raised, so that the benchmark compares probes that
#     succeed: with the default (10:30:100), a prober that hangs up without
#     waiting for sshd's close (blackbox_exporter) leaves sessions pending and
#     sshd drops a fifth of its connections, which then cost it less CPU;
#   - rsyslogd running (fail2ban reads /var/log/auth.log and mail.log).
# vsftpd (21) needs nothing beyond Debian's defaults.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "configure-daemons: not root: nothing done" >&2
  exit 0
fi

ssl=/etc/ssl/mamori-test
declare -A changed=()

# put PATH DAEMON: install stdin at PATH if it differs; mark DAEMON changed.
put() {
  local path=$1 daemon=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if ! cmp -s "$tmp" "$path" 2>/dev/null; then
    install -D -m 0644 "$tmp" "$path"
    changed[$daemon]=1
  fi
  rm -f "$tmp"
}

# --- certificates -----------------------------------------------------------
if [ ! -s "$ssl/server.key" ] || ! openssl x509 -checkend 2592000 -noout -in "$ssl/server.pem" >/dev/null 2>&1; then
  install -d -m 0755 "$ssl"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=mamori test CA" -keyout "$ssl/ca.key" -out "$ssl/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$ssl/server.key" -out "$ssl/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$ssl/server.ext"
  openssl x509 -req -in "$ssl/server.csr" -CA "$ssl/ca.pem" -CAkey "$ssl/ca.key" -CAcreateserial \
    -days 825 -extfile "$ssl/server.ext" -out "$ssl/server.pem" 2>/dev/null
  rm -f "$ssl/server.csr" "$ssl/server.ext"
  chmod 0600 "$ssl/ca.key" "$ssl/server.key"
  changed[apache2]=1 changed[postfix]=1 changed[dovecot]=1
fi

# --- apache2 ----------------------------------------------------------------
put /etc/apache2/sites-available/mamori-test.conf apache2 <<EOF
# mamori probe tests: HTTPS on 443 (test CA) and a Plesk-like panel on 8443
# (self-signed). Written by exporter/probe/testdata/configure-daemons.sh.
Listen 8443 https
<VirtualHost *:443>
	ServerName localhost
	DocumentRoot /var/www/html
	SSLEngine on
	SSLCertificateFile $ssl/server.pem
	SSLCertificateKeyFile $ssl/server.key
</VirtualHost>
<VirtualHost *:8443>
	ServerName localhost
	DocumentRoot /var/www/html
	SSLEngine on
	SSLCertificateFile /etc/ssl/certs/ssl-cert-snakeoil.pem
	SSLCertificateKeyFile /etc/ssl/private/ssl-cert-snakeoil.key
</VirtualHost>
EOF
put /etc/apache2/conf-available/mamori-test-redirect.conf apache2 <<'EOF'
# mamori probe tests: a redirect on the plain HTTP vhost too.
Redirect /mamori-redirect /
EOF
if [ ! -e /etc/apache2/mods-enabled/ssl.load ]; then a2enmod -q ssl >/dev/null; changed[apache2]=1; fi
if [ ! -e /etc/apache2/sites-enabled/mamori-test.conf ]; then a2ensite -q mamori-test >/dev/null; changed[apache2]=1; fi
if [ ! -e /etc/apache2/conf-enabled/mamori-test-redirect.conf ]; then a2enconf -q mamori-test-redirect >/dev/null; changed[apache2]=1; fi
apache2ctl configtest >/dev/null 2>&1 || { echo "configure-daemons: apache2 configtest failed" >&2; apache2ctl configtest; }

# --- postfix ----------------------------------------------------------------
pc() { # pc NAME VALUE: set a main.cf parameter when it differs
  if [ "$(postconf -h "$1")" != "$2" ]; then postconf -e "$1 = $2"; changed[postfix]=1; fi
}
pc inet_interfaces all
pc smtpd_tls_security_level may
pc smtpd_tls_cert_file "$ssl/server.pem"
pc smtpd_tls_key_file "$ssl/server.key"
if ! postconf -M smtps/inet >/dev/null 2>&1 || [ -z "$(postconf -M smtps/inet 2>/dev/null)" ]; then
  postconf -M smtps/inet="smtps inet n - y - - smtpd"
  changed[postfix]=1
fi
if [ "$(postconf -P smtps/inet/smtpd_tls_wrappermode 2>/dev/null | awk '{print $3}')" != "yes" ]; then
  postconf -P "smtps/inet/smtpd_tls_wrappermode=yes"
  changed[postfix]=1
fi

# --- dovecot ----------------------------------------------------------------
put /etc/dovecot/conf.d/99-mamori-test.conf dovecot <<EOF
# mamori probe tests: the test certificate. Written by
# exporter/probe/testdata/configure-daemons.sh.
ssl = yes
ssl_cert = <$ssl/server.pem
ssl_key = <$ssl/server.key
EOF

# --- mariadb ----------------------------------------------------------------
put /etc/mysql/mariadb.conf.d/99-mamori-test.cnf mariadb <<'EOF'
# mamori probe tests: answer on every address (127.0.0.0/8 for the
# benchmark). Written by exporter/probe/testdata/configure-daemons.sh.
[mysqld]
bind-address = 0.0.0.0
EOF

# --- fail2ban ---------------------------------------------------------------
put /etc/fail2ban/jail.d/mamori-test.local fail2ban <<'EOF'
# mamori probe tests: the default jails for sshd, postfix and dovecot, with
# this machine's own addresses NOT exempt, so that the tests can prove the
# prober never gets banned; the dummy action records bans without blocking
# anything. Written by exporter/probe/testdata/configure-daemons.sh.
[DEFAULT]
ignoreself = false
ignoreip =
banaction = dummy
banaction_allports = dummy
backend = polling

[sshd]
enabled = true

[postfix]
enabled = true

[dovecot]
enabled = true
EOF

# --- sshd -------------------------------------------------------------------
put /etc/ssh/sshd_config.d/99-mamori-test.conf ssh <<'EOF'
# mamori probe tests: see MaxStartups in configure-daemons.sh's header.
# Written by exporter/probe/testdata/configure-daemons.sh.
MaxStartups 100:30:200
EOF

# --- (re)start what changed -------------------------------------------------
pgrep -x rsyslogd >/dev/null || rsyslogd
# fail2ban refuses to start while a jail's log file is missing, and rsyslogd
# creates a file only on its first line: on a fresh machine neither exists.
for log in /var/log/auth.log /var/log/mail.log; do
  [ -e "$log" ] || install -m 640 -o root -g adm /dev/null "$log"
done
# A machine image saved while fail2ban ran keeps its socket in /run (not a
# tmpfs here), and the init script refuses to start beside a socket file.
if ! pgrep -f fail2ban-server >/dev/null; then
  rm -f /run/fail2ban/fail2ban.sock /run/fail2ban/fail2ban.pid
fi
for svc in ssh apache2 postfix dovecot mariadb fail2ban; do
  if ! service "$svc" status >/dev/null 2>&1; then
    # dovecot keeps the caller's stderr open: detach every daemon's stdio.
    service "$svc" start </dev/null >/dev/null 2>&1 || echo "configure-daemons: $svc did not start" >&2
  elif [ -n "${changed[$svc]:-}" ]; then
    service "$svc" restart </dev/null >/dev/null 2>&1 || echo "configure-daemons: $svc did not restart" >&2
  fi
done

# The probe account: logging in with it ends a MySQL probe without a
# handshake error (see exporter/probe/mysql.go).
for _ in $(seq 1 30); do
  mysqladmin ping >/dev/null 2>&1 && break
  sleep 0.5
done
mysql -e "CREATE USER IF NOT EXISTS 'mamori_probe'@'127.%'" ||
  echo "configure-daemons: could not create the mamori_probe account" >&2

echo "configure-daemons: apache2 443/8443, postfix 25/465, dovecot 993/995, mariadb, fail2ban configured"

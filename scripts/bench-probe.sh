#!/usr/bin/env bash
# Benchmark: mamori_exporter's probe role and Debian's
# prometheus-blackbox-exporter side by side, in one run, on the same local
# targets (the real daemons of this machine, configured by
# exporter/probe/testdata/configure-daemons.sh, answering on every address of
# 127.0.0.0/8). For each exporter it prints:
#   - CPU seconds per 1,000 probes, for every outside check of the plus plan
#     (the time its threads ran, from /proc/PID/task/*/schedstat: nanoseconds,
#     where utime+stime count 10 ms ticks, too coarse for a cheap check);
#   - the wall time and CPU of a sweep of HOSTS hosts (127.0.0.1 ..
#     127.0.0.HOSTS) x all outside checks, with the same number of probes in
#     flight for both (mamori: one request per host probing all its checks;
#     blackbox: one request per host and module, as Prometheus would scrape
#     them);
#   - peak RSS (VmHWM) while probing (reset after start-up and warm-up).
# ICMP: net.ipv4.ping_group_range is set for the run as systemd sets it on a
# Debian host (PING_RANGE, restored on exit; PING_RANGE= keeps the machine's),
# so both exporters ping with ICMP datagram sockets, each by its default.
# Both verify the same certificates (the test CA, server name localhost;
# self-signed accepted on 8443 only) and speak the same dialogues where
# blackbox can (query_response with STARTTLS); blackbox cannot read a MySQL
# greeting, so its mysql check is a bare TCP connect.
#
# Run as root on a machine prepared by scripts/setup-test.sh (about six
# minutes with the defaults):
#   scripts/bench-probe.sh            (N=1000 HOSTS=200 PAR=28 PAR_CHECK=8)
# The mamori side is ./mamori_exporter (make build), or $MAMORI_EXPORTER.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}                 # probes per check for "CPU per 1,000"
HOSTS=${HOSTS:-200}          # hosts of the sweep, 127.0.0.1 .. 127.0.0.HOSTS
PAR=${PAR:-28}               # probes in flight during the sweep
PAR_CHECK=${PAR_CHECK:-8}    # probes in flight per check (fewer than sshd's MaxStartups)
ROUNDS=${ROUNDS:-4}          # alternating slices per check
PING_RANGE=${PING_RANGE-0 2147483647}  # net.ipv4.ping_group_range for the run
MAMORI_PORT=${MAMORI_PORT:-19796}
BLACKBOX_PORT=${BLACKBOX_PORT:-19115}
CA=/etc/ssl/mamori-test/ca.pem
ALL_CHECKS=(ping http https plesk imap imaps pop3 pop3s smtp smtps ssh ftp mysql url)
# ONLY="smtp ssh": a subset of the per-check runs; ONLY=-: the sweep only
read -r -a CHECKS <<<"${ONLY:-${ALL_CHECKS[*]}}"
[ "${CHECKS[*]}" != "-" ] || CHECKS=()

die() { echo "bench-probe: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (ICMP, and the daemons' configuration)"
[ "$HOSTS" -ge 1 ] && [ "$HOSTS" -le 254 ] || die "HOSTS must be 1-254 (addresses in 127.0.0.0/8)"
[ -s "$CA" ] || die "$CA missing: run scripts/setup-test.sh first"
command -v curl >/dev/null || die "curl is needed"
if ! command -v prometheus-blackbox-exporter >/dev/null; then
  echo "bench-probe: installing prometheus-blackbox-exporter" >&2
  echo "prometheus-blackbox-exporter prometheus-blackbox-exporter/want_cap_net_raw boolean true" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-blackbox-exporter >/dev/null
fi

work=$(mktemp -d /tmp/bench-probe.XXXXXX)
pids=()
ping_range=/proc/sys/net/ipv4/ping_group_range
saved_range=$(cat "$ping_range")
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "$saved_range" >"$ping_range"
  rm -rf "$work"
}
trap cleanup EXIT
[ -z "$PING_RANGE" ] || echo "$PING_RANGE" >"$ping_range"

# --- the targets, for both -----------------------------------------------------
{
  echo "customers:"
  echo "  - name: bench"
  echo "    plan: plus"
  echo "    contacts: [root@localhost]"
  echo "    hosts:"
  for i in $(seq 1 "$HOSTS"); do
    cat <<EOF
      - name: h$i.bench.test
        address: 127.0.0.$i
        checks:
          https: {server_name: localhost}
          plesk: {insecure_skip_verify: true}
          imap: {starttls: true, server_name: localhost}
          imaps: {server_name: localhost}
          pop3: {starttls: true, server_name: localhost}
          pop3s: {server_name: localhost}
          smtp: {starttls: true, server_name: localhost}
          smtps: {server_name: localhost}
          url: {url: "http://127.0.0.$i/", body_match: "Apache2 Debian Default Page"}
EOF
  done
} >"$work/inventory.yml"

cat >"$work/blackbox.yml" <<EOF
modules:
  ping: {prober: icmp}
  http: {prober: http, http: {valid_status_codes: [200, 301, 302, 303, 307, 308], no_follow_redirects: true}}
  https: {prober: http, http: {valid_status_codes: [200, 301, 302, 303, 307, 308], no_follow_redirects: true,
    tls_config: {ca_file: $CA, server_name: localhost}}}
  plesk: {prober: http, http: {valid_status_codes: [200, 301, 302, 303, 307, 308], no_follow_redirects: true,
    tls_config: {insecure_skip_verify: true}}}
  url: {prober: http, http: {fail_if_body_not_matches_regexp: ["Apache2 Debian Default Page"]}}
  imap:
    prober: tcp
    tcp:
      tls_config: {ca_file: $CA, server_name: localhost}
      query_response:
        - expect: "^\\\\* OK"
        - send: "m1 CAPABILITY\\r\\nm2 STARTTLS"
        - expect: "^m1 OK"
        - expect: "^m2 OK"
        - starttls: true
        - send: "m3 CAPABILITY\\r\\nm4 LOGOUT"
        - expect: "^m3 OK"
        - expect: "^m4 OK"
  imaps:
    prober: tcp
    tcp:
      tls: true
      tls_config: {ca_file: $CA, server_name: localhost}
      query_response:
        - expect: "^\\\\* OK"
        - send: "m1 CAPABILITY\\r\\nm2 LOGOUT"
        - expect: "^m1 OK"
        - expect: "^m2 OK"
  pop3:
    prober: tcp
    tcp:
      tls_config: {ca_file: $CA, server_name: localhost}
      query_response:
        - expect: "^\\\\+OK"
        - send: "STLS"
        - expect: "^\\\\+OK"
        - starttls: true
        - send: "QUIT"
        - expect: "^\\\\+OK"
  pop3s:
    prober: tcp
    tcp:
      tls: true
      tls_config: {ca_file: $CA, server_name: localhost}
      query_response:
        - expect: "^\\\\+OK"
        - send: "QUIT"
        - expect: "^\\\\+OK"
  smtp:
    prober: tcp
    tcp:
      tls_config: {ca_file: $CA, server_name: localhost}
      query_response:
        - expect: "^220 "
        - send: "EHLO prober"
        - expect: "^250 "
        - send: "STARTTLS"
        - expect: "^220 "
        - starttls: true
        - send: "EHLO prober"
        - expect: "^250 "
        - send: "QUIT"
        - expect: "^221 "
  smtps:
    prober: tcp
    tcp:
      tls: true
      tls_config: {ca_file: $CA, server_name: localhost}
      query_response:
        - expect: "^220 "
        - send: "EHLO prober"
        - expect: "^250 "
        - send: "QUIT"
        - expect: "^221 "
  ssh:
    prober: tcp
    tcp:
      query_response:
        - expect: "^SSH-2.0-"
        - send: "SSH-2.0-blackbox-ssh-check"
  ftp:
    prober: tcp
    tcp:
      query_response:
        - expect: "^220 "
        - send: "QUIT"
        - expect: "^221 "
  mysql: {prober: tcp}
EOF

# blackbox's target for check $1 on host number $2
bb_target() {
  local ip=127.0.0.$2
  case $1 in
    ping) echo "$ip" ;;
    http|url) echo "http://$ip/" ;;
    https) echo "https://$ip/" ;;
    plesk) echo "https://$ip:8443/" ;;
    imap) echo "$ip:143" ;; imaps) echo "$ip:993" ;;
    pop3) echo "$ip:110" ;; pop3s) echo "$ip:995" ;;
    smtp) echo "$ip:25" ;; smtps) echo "$ip:465" ;;
    ssh) echo "$ip:22" ;; ftp) echo "$ip:21" ;; mysql) echo "$ip:3306" ;;
  esac
}

# --- the exporters ---------------------------------------------------------------
mamori_bin=${MAMORI_EXPORTER:-./mamori_exporter}
mamori_what=$mamori_bin
[ -x "$mamori_bin" ] || die "$mamori_bin missing: run make build"
"$mamori_bin" --config.file="$work/inventory.yml" --web.listen-address="127.0.0.1:$MAMORI_PORT" \
  --probe.tls-ca-file="$CA" --log.level=warn >"$work/mamori.log" 2>&1 &
mamori_pid=$!
pids+=("$mamori_pid")
prometheus-blackbox-exporter --config.file="$work/blackbox.yml" \
  --web.listen-address="127.0.0.1:$BLACKBOX_PORT" --log.level=warn >"$work/blackbox.log" 2>&1 &
blackbox_pid=$!
pids+=("$blackbox_pid")
for port in "$MAMORI_PORT" "$BLACKBOX_PORT"; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics" || die "exporter on port $port did not start: $(cat "$work"/*.log)"
done

alive() { [ -r "/proc/$1/stat" ] || die "exporter pid $1 exited; its log: $(tail -n 5 "$work"/*.log)"; }
# Both exporters are Go programs, whose threads live as long as the process,
# so the sum over its threads is all the CPU it used.
cpu() { alive "$1"; cat /proc/"$1"/task/*/schedstat | awk '{ t += $1 } END { printf "%.6f", t / 1e9 }'; }
hwm() { alive "$1"; awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# fetch PARALLEL URLFILE OUTDIR: every URL of the file, PARALLEL at a time,
# each answer in OUTDIR/N.
fetch() {
  local par=$1 urls=$2 out=$3 i=0
  mkdir -p "$out"
  while read -r u; do
    i=$((i + 1))
    printf 'url = "%s"\noutput = "%s/%d"\n' "$u" "$out" "$i"
  done <"$urls" >"$out.curlrc"
  curl -sS --no-progress-meter --parallel --parallel-max "$par" -H "X-Prometheus-Scrape-Timeout-Seconds: 10" \
    -K "$out.curlrc" 2>>"$work/curl.log" || true
}

# ok_count KIND OUTDIR: successful probes in the answers
ok_count() {
  if [ "$1" = mamori ]; then
    cat "$2"/* 2>/dev/null | grep -c '^mamori_probe_success{.*} 1$' || true
  else
    { grep -l '^probe_success 1$' "$2"/* 2>/dev/null || true; } | wc -l
  fi
}

# warm up both (TLS session caches, page cache, process pools)
for i in 1 2 3; do
  curl -fsS -o /dev/null -H "X-Prometheus-Scrape-Timeout-Seconds: 10" "http://127.0.0.1:$MAMORI_PORT/probe?target=127.0.0.$i"
  for c in "${ALL_CHECKS[@]}"; do
    curl -fsS -o /dev/null "http://127.0.0.1:$BLACKBOX_PORT/probe?module=$c&target=$(bb_target "$c" "$i")"
  done
done

# Peak RSS is measured from here: what loading the configuration cost at
# start (the inventory's transient garbage, for mamori) is not probing.
sleep 2
for p in "$mamori_pid" "$blackbox_pid"; do echo 5 >"/proc/$p/clear_refs"; done
echo "mamori:   $mamori_what (pid $mamori_pid)"
echo "blackbox: $(prometheus-blackbox-exporter --version 2>&1 | head -1) (pid $blackbox_pid)"
echo "net.ipv4.ping_group_range: $(tr '\t' ' ' <"$ping_range") (was: $(echo "$saved_range" | tr '\t' ' '))"
echo "N=$N probes per check, $PAR_CHECK in flight, in $ROUNDS alternating slices; sweep of $HOSTS hosts x ${#ALL_CHECKS[@]} checks, $PAR probes in flight"
echo
printf '%-7s %22s %24s %6s  %s\n' check "mamori CPU s/1000 (ok)" "blackbox CPU s/1000 (ok)" ratio "mamori failures"
for c in ${CHECKS[@]+"${CHECKS[@]}"}; do
  # ROUNDS alternating slices of N/ROUNDS probes each, so that a change of
  # load on the machine weighs on both alike.
  per=$(( N / ROUNDS ))
  mcpu=0 bcpu=0 mok=0 bok=0
  : >"$work/m-$c.reasons"
  for r in $(seq 1 "$ROUNDS"); do
    for k in $(seq 1 "$per"); do
      h=$(( (r * per + k - 1) % HOSTS + 1 ))
      echo "http://127.0.0.1:$MAMORI_PORT/probe?target=h$h.bench.test&check=$c"
    done >"$work/m.urls"
    for k in $(seq 1 "$per"); do
      h=$(( (r * per + k - 1) % HOSTS + 1 ))
      echo "http://127.0.0.1:$BLACKBOX_PORT/probe?module=$c&target=$(bb_target "$c" "$h")"
    done >"$work/b.urls"
    c0=$(cpu "$mamori_pid"); fetch "$PAR_CHECK" "$work/m.urls" "$work/m"; c1=$(cpu "$mamori_pid")
    b0=$(cpu "$blackbox_pid"); fetch "$PAR_CHECK" "$work/b.urls" "$work/b"; b1=$(cpu "$blackbox_pid")
    mcpu=$(awk -v t="$mcpu" -v a="$c0" -v b="$c1" 'BEGIN { print t + b - a }')
    bcpu=$(awk -v t="$bcpu" -v a="$b0" -v b="$b1" 'BEGIN { print t + b - a }')
    mok=$(( mok + $(ok_count mamori "$work/m") ))
    bok=$(( bok + $(ok_count blackbox "$work/b") ))
    cat "$work"/m/* 2>/dev/null | grep '^mamori_probe_failure{.*} 1$' | sed 's/.*reason="\([a-z_]*\)".*/\1/' >>"$work/m-$c.reasons" || true
    rm -rf "$work/m" "$work/b"
  done
  n=$(( per * ROUNDS ))
  m=$(awk -v t="$mcpu" -v n="$n" 'BEGIN { printf "%.3f", t * 1000 / n }')
  b=$(awk -v t="$bcpu" -v n="$n" 'BEGIN { printf "%.3f", t * 1000 / n }')
  ratio=$(awk -v m="$m" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", m / b; else print "-" }')
  printf '%-7s %15s (%4d) %17s (%4d) %6s  %s\n' "$c" "$m" "$mok" "$b" "$bok" "$ratio" \
    "$(sort "$work/m-$c.reasons" | uniq -c | awk '{ printf "%s%s=%s", sep, $2, $1; sep = " " }')"
done

# --- the sweep ---------------------------------------------------------------------
for h in $(seq 1 "$HOSTS"); do echo "http://127.0.0.1:$MAMORI_PORT/probe?target=h$h.bench.test"; done >"$work/m-sweep.urls"
for h in $(seq 1 "$HOSTS"); do
  for c in "${ALL_CHECKS[@]}"; do echo "http://127.0.0.1:$BLACKBOX_PORT/probe?module=$c&target=$(bb_target "$c" "$h")"; done
done >"$work/b-sweep.urls"
total=$((HOSTS * ${#ALL_CHECKS[@]}))
mpar=$(( PAR / ${#ALL_CHECKS[@]} )); [ "$mpar" -ge 1 ] || mpar=1
c0=$(cpu "$mamori_pid"); t0=$(date +%s.%N)
fetch "$mpar" "$work/m-sweep.urls" "$work/m-sweep"
t1=$(date +%s.%N); c1=$(cpu "$mamori_pid")
b0=$(cpu "$blackbox_pid"); u0=$(date +%s.%N)
fetch "$PAR" "$work/b-sweep.urls" "$work/b-sweep"
u1=$(date +%s.%N); b1=$(cpu "$blackbox_pid")
echo
printf '%-8s %10s %10s %12s %14s\n' "" "sweep wall" "sweep CPU" "ok probes" "peak RSS MiB"
printf '%-8s %9.2fs %9.2fs %6d/%-5d %14s\n' mamori "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
  "$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" "$(ok_count mamori "$work/m-sweep")" "$total" "$(hwm "$mamori_pid")"
printf '%-8s %9.2fs %9.2fs %6d/%-5d %14s\n' blackbox "$(awk -v a="$u0" -v b="$u1" 'BEGIN{print b-a}')" \
  "$(awk -v a="$b0" -v b="$b1" 'BEGIN{print b-a}')" "$(ok_count blackbox "$work/b-sweep")" "$total" "$(hwm "$blackbox_pid")"

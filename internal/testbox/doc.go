// Package testbox boots a real systemd "customer server" for integration and
// end-to-end tests: a systemd-nspawn container over an overlay of the
// machine's own root, on an address of its own in 198.18.0.0/15, where root
// logs in over a real sshd and `systemctl restart apache2` really restarts
// apache2 (and really fails: an unknown unit is status 5, a broken config
// status 1 with systemd's message). PID 1 of the machine need not be systemd.
//
//	func TestRestart(t *testing.T) {
//		testenv.RequireIntegration(t)
//		b := testbox.StartT(t, testbox.Options{}) // Require, Start, Stop at cleanup
//		out, status, err := b.Run(ctx, "systemctl restart apache2") // x/crypto/ssh, pinned host key
//		...
//		b.Exec(ctx, "kill", "-9", pid) // fault injection, by a PID read inside the box
//		b.Unreachable(true)             // connections now time out
//	}
//
// # The box
//
// Units (DefaultUnits, all active when Start returns): apache2 (80, and 443
// with a certificate signed by the box's CA, Box.CAFile, for the box's name,
// its address and localhost), sw-cp-server (the Plesk-like panel: its own
// unit and process, sw-cp-serverd, a copy of apache2, on 8443 with a
// self-signed certificate, so that the runbook's plesk check has a unit to
// restart), dovecot (110, 143, 993, 995, and the SASL socket postfix
// asks), postfix (25 STARTTLS, 465 SMTPS, 587 submission: STARTTLS, then
// SASL AUTH of the box's system accounts through dovecot, and only
// authenticated clients relay; mydestination the box's name, other domains
// by SMTP, where they stay queued: no DNS, no route), mariadb (3306 on
// every address, a fresh data directory, root by unix socket: create
// probe accounts with Exec("mysql", "-e", ...)), ssh (22, root by key only,
// one ed25519 host key), vsftpd (21), xinetd, rsyslog, fail2ban (the
// machine's jails), spamd (no DNS checks). Options add files, units and
// binaries of the machine run as units (Service: mamori_exporter built by
// `make build`); Box.MailAccount adds a mail account (a system user with a
// password) and Box.Submit sends mail as one through 587.
//
// Masked: apt, dpkg, e2scrub, fstrim, man-db and logrotate timers, smartd,
// postgresql, docker, containerd, podman, prometheus and its exporters, timesyncd,
// pstore, console-getty (Options.Mask adds more). There is no DNS: the box's
// name is in its /etc/hosts (127.0.1.1), resolv.conf says only
// "options timeout:1 attempts:1", and there is no default route, so no
// daemon waits on a name server. Logs, mail queues, mailboxes, the MariaDB
// data directory and fail2ban's database start empty.
//
// # How it is built
//
//  1. Under a lock (/run/mamori-testbox/lock, shared by all test processes),
//     what crashed runs left is removed, the lowest free X in 1..254 is
//     taken, and a network namespace mamori-box-NAME gets a veth pair:
//     198.18.X.1/30 on the machine (mboxX), 198.18.X.2/30 in the box (eth0).
//     The guard route `unreachable 198.18.0.0/15 metric 4000` is added
//     unless present (and removed by Stop only if this box added it and
//     nothing else lies in 198.18.0.0/15 any more).
//  2. A cgroup mamori-testbox-NAME is made in each hierarchy systemd uses
//     (cgroup2, and v1 name=systemd on a hybrid machine) below the test's
//     own, and nspawn runs in it.
//  3. `unshare --mount --propagation private` runs a shell that mounts a
//     tmpfs and an overlay (lower: the machine's /, upper: the tmpfs),
//     applies the box's plan to the merged tree (removals, a tar stream of
//     files, postconf) and execs `systemd-nspawn -q -D ROOT --register=no
//     --keep-unit -M NAME --network-namespace-path=/run/netns/mamori-box-NAME
//     --console=passive --resolv-conf=off --link-journal=no -b`. Everything the
//     box writes lands in its tmpfs; the machine's files are never changed.
//  4. Start waits for root to log in over SSH, then for `systemctl
//     is-system-running --wait` (unless SSHOnly); a degraded boot is an error
//     naming the failed units, unless AllowDegraded.
//
// Stop sends SIGTERM to nspawn (a clean poweroff), kills the box's init after
// Options.StopGrace, then removes the veth, the namespace, the cgroups, the
// box's directory and state file. If the test process dies instead, nspawn
// gets SIGTERM through its parent-death signal and powers the box off; the
// next Start (any name) removes the rest. Mounts live only in the box's
// private mount namespace and end with it.
//
// # Measured here (Debian 12, 2 cores, other tests running)
//
// Boot to SSH 1.0-1.7 s (up to 3 s under heavy load), to every unit started
// 1.5-2.3 s (up to 4.4 s); `systemctl restart apache2` over SSH 0.25-0.3 s
// (up to 1 s); Stop 1.4-2 s. Start is bounded by Options.Timeout (30 s).
//
// # Pitfalls met
//
//   - Postfix loads a main.cf changed less than ~2 s ago only after it has
//     settled (it dozes 300 ms at a time): postfix's systemd generator held
//     every boot up by 2 s. The seed backdates main.cf and master.cf.
//   - spamd probes DNS while starting and, without DNS, takes 15 s over it,
//     ignoring SIGTERM meanwhile: a shutdown soon after boot hung. The box
//     says dns_available no.
//   - nspawn --keep-unit puts the box into "payload" below its own cgroup:
//     boxes started from one cgroup shared it, and each box's systemd
//     managed the other's apache2.service cgroup. Hence a cgroup per box.
//   - A new mount namespace copies /run/netns/* mounts: a box would keep
//     every other namespace alive (with its veth). The seed unmounts them,
//     and Stop deletes the veth explicitly.
//   - The machine's /etc is the lower layer and other tests change it
//     (vhosts on 8443, TLS files, fail2ban jails, postfix settings). The box
//     owns what it depends on: apache2's ports.conf, sites-enabled and
//     conf-enabled, the sshd settings (sshd_config.d/00-, first value wins),
//     dovecot's and MariaDB's last-read snippets (zz-), postfix's main.cf
//     settings, its certificates.
//   - The first SSH login starts user@0.service (about 0.3 s once).
//   - Run wraps commands in timeout(1) when ctx has a deadline (exit 124 on
//     expiry): a signal sent over SSH does not stop a root command.
//
// # Requirements
//
// Root; systemd-nspawn (package systemd-container), ip (iproute2), nft
// (nftables), nsenter and unshare (util-linux), tar, and the services:
// scripts/setup-test.sh installs them all. Require skips a test without
// them, or fails it under CI=true.
package testbox

// Package probe is mamori_exporter's probe role: the runbook's checks "from
// outside", each a real protocol dialogue that ends politely, run
// centrally against the hosts of the inventory.
//
// # Probers
//
// One Prober per protocol of the registry (runbook.Protocol), one file
// each, named after what it talks to: icmp.go (pro-bing: several echo
// requests, loss and round-trip time), http.go (HTTP and HTTPS: status,
// optional body match, the Plesk panel, the url check), smtp.go, imap.go,
// pop3.go (greeting, capabilities, optional STARTTLS/STLS, QUIT or LOGOUT),
// ftp.go, ssh.go (identification exchange, SSH_MSG_DISCONNECT), mysql.go
// (greeting packet, a clean login-and-quit so the server never blocks the
// prober). tcp.go and tls.go are the layers under them: connect within the
// deadline, CRLF lines, an orderly hang-up (the server closes first: no
// reset, no "lost connection" log line, no TIME_WAIT on the prober), the
// TLS handshake with SNI from the inventory's server_name (else the host's
// name), chain verification and the certificates' earliest expiry. Which
// checks exist, on which port, with TLS or not, comes from the registry and
// the inventory's overrides (port, server_name, insecure_skip_verify,
// starttls, url, body_match); nothing here lists checks. A Runner probes
// inventory hosts for the handler, and for the remediator's re-probe
// (Runner.Check).
//
// # /probe
//
//	GET /probe?target=HOST[&check=ID ...][&debug=true]
//
// HOST is an inventory host's name or address. Every outside check in force
// on the host (or only the named ones) is probed concurrently, within
// Prometheus' X-Prometheus-Scrape-Timeout-Seconds minus
// --probe.timeout-offset (--probe.default-timeout without the header). The
// answer, from a registry made for the request:
//
//	mamori_probe_success{check,port}                     1 when the dialogue succeeded
//	mamori_probe_duration_seconds{check,port}            time the dialogue took
//	mamori_probe_failure{check,port,reason}              1 for the failing reason, 0 for every other one
//	mamori_tls_cert_expiry_timestamp_seconds{check,port} earliest certificate expiry, when a TLS handshake got that far
//	mamori_probe_icmp_packet_loss_ratio{check,port}      the ping check's loss
//	mamori_probe_icmp_rtt_seconds{check,port}            the ping check's average round-trip time, when a reply came
//
// port is empty for ping. A target that is not in the inventory is refused
// with 403 (the prober is no open proxy) unless --probe.allow-unknown-targets,
// which probes it with the standard plan's outside checks; an unknown check,
// a host check, or a check not in force on the host is 400. debug=true
// answers with each check's dialogue, then the metrics, as text.
//
// # Failure reasons
//
// The reason label takes exactly these values:
//
//	`refused`        the TCP connection was refused: nothing listens
//	`timeout`        no answer within the scrape timeout: a silent or overloaded server, a host that drops packets, 100% ICMP loss
//	`unreachable`    no route to the host, at once (a reject, an unreachable route)
//	`dns`            the host's name did not resolve
//	`tls`            the TLS handshake failed, the certificate did not verify (name, chain, expiry), or STARTTLS was not offered or refused
//	`banner`         the greeting was missing or wrong: SMTP/FTP not 220, IMAP not "* OK", POP3 not "+OK", no "SSH-2.0-" identification, no MySQL v10 greeting
//	`protocol`       a later step got an answer the protocol does not allow (EHLO or CAPABILITY refused, a malformed reply, a dropped connection, too many redirects)
//	`http_status`    the HTTP status was not 2xx or 3xx
//	`body_mismatch`  the HTTP body did not match the inventory's body_match
//	`blocked`        the server refused the prober at the greeting with an error packet (MySQL 1129 host blocked, 1130 host not allowed, 1040 too many connections)
//	`internal`       the prober could not run the probe (an ICMP socket it may not open): the target may be fine
//
// # /sd
//
// Prometheus HTTP service discovery (http_sd_configs) from the inventory:
// one target group per host, in inventory order; the target is the host's
// address, the labels are customer, host and plan:
//
//	[{"targets":["198.18.0.2"],"labels":{"customer":"acme","host":"web1.acme.example","plan":"plus"}}]
//
// A scrape configuration that probes every host through it:
//
//	scrape_configs:
//	  - job_name: mamori_probe
//	    metrics_path: /probe
//	    scrape_timeout: 15s
//	    http_sd_configs: [{url: "http://prober:9796/sd"}]
//	    relabel_configs:
//	      - {source_labels: [host], target_label: __param_target}  # the name: unambiguous
//	      - {source_labels: [host], target_label: instance}
//	      - {target_label: __address__, replacement: "prober:9796"}
//
// # Staying out of fail2ban
//
// Every dialogue ends as a well-behaved client ends it (QUIT, LOGOUT,
// SSH_MSG_DISCONNECT, COM_QUIT) and waits for the server to close. Against
// Debian 12's daemons, 500 probes of each mail and SSH check in a row match
// nothing in the default modes of fail2ban's sshd, postfix and dovecot
// filters (see the integration tests). The sshd filter's ddos/aggressive
// modes and the dovecot filter's aggressive mode count every session that
// ends before authentication, however polite: hosts using them must exempt
// the prober's address (--probe.source-address) with ignoreip.
package probe

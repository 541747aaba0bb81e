package probe

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mamori-ops/mamori/internal/quietnet"
)

// Config is the probe role's flags.
type Config struct {
	// TimeoutOffset is subtracted from Prometheus' scrape timeout, so the
	// answer arrives before Prometheus gives up.
	TimeoutOffset time.Duration
	// DefaultTimeout is the scrape timeout assumed when a request does not
	// carry X-Prometheus-Scrape-Timeout-Seconds (curl, the remediator).
	DefaultTimeout time.Duration
	// AllowUnknownTargets probes addresses that are not in the inventory,
	// with the standard plan's outside checks. Off: the prober is no open
	// proxy.
	AllowUnknownTargets bool
	// ICMPSocket is the kind of ICMP socket ping probes use: auto, raw or
	// datagram (icmpsocket.go).
	ICMPSocket string
	// ICMPCount echo requests are sent ICMPInterval apart; ICMPWait is how
	// long the last one may take to be answered.
	ICMPCount    int
	ICMPInterval time.Duration
	ICMPWait     time.Duration
	// HTTPMaxRedirects bounds the redirects the url check follows; the
	// http, https and plesk checks take a 3xx answer as it is.
	HTTPMaxRedirects int
	// CAFile holds extra PEM certificates trusted besides the system's, for
	// hosts with a private CA.
	CAFile string
	// HELOName is the name the SMTP probe gives in EHLO; empty means this
	// machine's host name.
	HELOName string
	// MySQLUser is the account the MySQL probe logs in as, with an empty
	// password, to end the session without a handshake error (see mysql.go).
	// Empty: read the greeting and hang up (counts against the server's
	// max_connect_errors).
	MySQLUser string
	// SourceAddress is the local address probes are sent from; empty lets
	// the kernel choose.
	SourceAddress string
}

// AddFlags registers the probe role's flags on a.
func AddFlags(a *kingpin.Application) *Config {
	c := &Config{}
	a.Flag("probe.timeout-offset", "Subtracted from Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) so that a probe answers in time.").
		Default("500ms").DurationVar(&c.TimeoutOffset)
	a.Flag("probe.default-timeout", "Probe timeout when a request carries no scrape timeout header.").
		Default("10s").DurationVar(&c.DefaultTimeout)
	a.Flag("probe.allow-unknown-targets", "Probe targets that are not hosts of the inventory, with the standard plan's outside checks. Off by default: the prober is no open proxy.").
		Default("false").BoolVar(&c.AllowUnknownTargets)
	a.Flag("probe.icmp-socket", "ICMP sockets for ping probes: datagram (needs the prober's group in net.ipv4.ping_group_range, as systemd sets it on Debian; cheaper: the kernel sorts the replies), raw (root or CAP_NET_RAW), or auto: datagram where the range admits the prober's group, else raw, decided at start.").
		Default(ICMPSocketAuto).EnumVar(&c.ICMPSocket, ICMPSocketAuto, ICMPSocketRaw, ICMPSocketDatagram)
	a.Flag("probe.icmp-count", "ICMP echo requests per ping probe; the probe succeeds when one is answered and reports the loss.").
		Default("3").IntVar(&c.ICMPCount)
	a.Flag("probe.icmp-interval", "Time between a ping probe's echo requests. The default sends them back to back: pro-bing polls its socket while a probe runs, so a probe's CPU grows with its duration (1ms costs 60% more than 10us). Widen it to spread the requests over a longer window.").
		Default("10us").DurationVar(&c.ICMPInterval)
	a.Flag("probe.icmp-wait", "How long a ping probe waits for the answer to its last echo request.").
		Default("1s").DurationVar(&c.ICMPWait)
	a.Flag("probe.http-max-redirects", "Redirects the url check follows before it fails with reason protocol.").
		Default("5").IntVar(&c.HTTPMaxRedirects)
	a.Flag("probe.tls-ca-file", "PEM file of CA certificates trusted besides the system's, for hosts with a private CA.").
		Default("").StringVar(&c.CAFile)
	a.Flag("probe.smtp-helo-name", "Name the SMTP probe gives in EHLO (default: this machine's host name).").
		Default("").StringVar(&c.HELOName)
	a.Flag("probe.mysql-user", "Account (no password, no privileges) the MySQL probe logs in as, so that the server does not count the probe as a connection error and block the prober (max_connect_errors). Empty: read the greeting and hang up.").
		Default("mamori_probe").StringVar(&c.MySQLUser)
	a.Flag("probe.source-address", "Local IP address probes are sent from (default: chosen by the kernel). It is the address to exempt in the targets' fail2ban and firewalls.").
		Default("").StringVar(&c.SourceAddress)
	return c
}

// Validate checks the flags and loads the CA file; the app may call it at
// start-up to fail early. NewHandler calls it too.
func (c *Config) Validate() error {
	_, err := c.compile()
	return err
}

// settings are the Config made ready for probing.
type settings struct {
	*Config
	icmpPrivileged bool           // --probe.icmp-socket resolved
	roots          *x509.CertPool // nil: the system's
	heloName       string
	source         net.IP // nil: the kernel's choice
	dialer         quietnet.Dialer
	readers        sync.Pool // *bufio.Reader of maxLine bytes, reused across probes
	verified       verifyCache
	regexps        regexpCache
}

// reader returns a line reader over r.
func (s *settings) reader(r io.Reader) *bufio.Reader {
	if br, ok := s.readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, maxLine)
}

// release gives a reader back once its connection is closed.
func (s *settings) release(br *bufio.Reader) {
	if br != nil {
		br.Reset(nil)
		s.readers.Put(br)
	}
}

func (c *Config) compile() (*settings, error) {
	var errs []error
	if c.TimeoutOffset < 0 {
		errs = append(errs, fmt.Errorf("--probe.timeout-offset must not be negative, got %s", c.TimeoutOffset))
	}
	if c.DefaultTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--probe.default-timeout must be positive, got %s", c.DefaultTimeout))
	}
	if c.ICMPCount < 1 || c.ICMPCount > 100 {
		errs = append(errs, fmt.Errorf("--probe.icmp-count must be 1-100, got %d", c.ICMPCount))
	}
	if c.ICMPInterval <= 0 || c.ICMPWait <= 0 {
		errs = append(errs, errors.New("--probe.icmp-interval and --probe.icmp-wait must be positive"))
	}
	if c.HTTPMaxRedirects < 0 || c.HTTPMaxRedirects > 20 {
		errs = append(errs, fmt.Errorf("--probe.http-max-redirects must be 0-20, got %d", c.HTTPMaxRedirects))
	}
	s := &settings{Config: c, heloName: c.HELOName}
	var err error
	if s.icmpPrivileged, err = icmpPrivileged(c.ICMPSocket); err != nil {
		errs = append(errs, err)
	}
	if c.SourceAddress != "" {
		if s.source = net.ParseIP(c.SourceAddress); s.source == nil {
			errs = append(errs, fmt.Errorf("--probe.source-address: %q is not an IP address", c.SourceAddress))
		} else {
			s.dialer.Source, _ = netip.AddrFromSlice(s.source)
		}
	}
	if strings.ContainsFunc(c.HELOName, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		errs = append(errs, fmt.Errorf("--probe.smtp-helo-name: %q contains spaces or control characters", c.HELOName))
	}
	if s.heloName == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			s.heloName = h
		} else {
			s.heloName = "localhost"
		}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--probe.tls-ca-file: %w", err))
		} else {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("--probe.tls-ca-file: no PEM certificate in %s", c.CAFile))
			}
			s.roots = pool
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

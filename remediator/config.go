package remediator

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/mamori-ops/mamori/internal/config"
	"github.com/mamori-ops/mamori/inventory"
	rmail "github.com/mamori-ops/mamori/remediator/mail"
)

// Defaults of the configuration file, documented in remediator.example.yml.
const (
	DefaultJournalPath     = "/var/lib/mamori/remediator.db"
	DefaultOutputLimit     = 64 << 10
	DefaultMaxBodyBytes    = 4 << 20
	DefaultWorkers         = 8
	DefaultRestartBudget   = 3
	DefaultRestartWindow   = time.Hour
	DefaultRebootBudget    = 1
	DefaultRebootWindow    = 6 * time.Hour
	DefaultConcurrentActs  = 5
	DefaultCommandTimeout  = 60 * time.Second
	DefaultKillAfter       = 5 * time.Second
	DefaultConnectTimeout  = 10 * time.Second
	DefaultHandshake       = 10 * time.Second
	DefaultOutOfBand       = 2 * time.Minute
	DefaultProbeTimeout    = 10 * time.Second
	DefaultVerifyDelay     = 2 * time.Second
	DefaultVerifyInterval  = 3 * time.Second
	DefaultVerifyAttempts  = 5
	DefaultRebootWait      = 5 * time.Minute
	DefaultShutdownGrace   = 30 * time.Second
	DefaultMailTimeout     = 30 * time.Second
	DefaultRetryInitial    = 30 * time.Second
	DefaultRetryMax        = 10 * time.Minute
	DefaultRetryGiveUp     = 24 * time.Hour
	DefaultTimeZone        = "Asia/Tokyo"
	DefaultOperatorsLocale = inventory.Japanese
)

// Config is the remediator's configuration file. Unknown fields are
// rejected; errors name the file, line and field.
type Config struct {
	// InventoryFile is the fleet, shared with mamori_exporter; relative to
	// this file.
	InventoryFile string `yaml:"inventory_file"`
	// ExternalURL is how people reach this remediator, for links in emails.
	ExternalURL string `yaml:"external_url"`
	// DryRun renders and records every command and email without running
	// or sending any.
	DryRun bool `yaml:"dry_run"`
	// Workers bounds the ladders running at once.
	Workers   int             `yaml:"workers"`
	Journal   JournalConfig   `yaml:"journal"`
	Webhook   WebhookConfig   `yaml:"webhook"`
	Budgets   BudgetsConfig   `yaml:"budgets"`
	Ladder    LadderConfig    `yaml:"ladder"`
	Mail      MailConfig      `yaml:"mail"`
	Operators OperatorsConfig `yaml:"operators"`

	// File is where the configuration was read from.
	File string `yaml:"-"`
	// Location is Mail.TimeZone, loaded.
	Location *time.Location `yaml:"-"`
}

// JournalConfig is where incidents are recorded.
type JournalConfig struct {
	// Path of the SQLite file; relative to the configuration file.
	Path string `yaml:"path"`
	// OutputLimitBytes bounds the output kept of each command.
	OutputLimitBytes int `yaml:"output_limit_bytes"`
}

// WebhookConfig authenticates Alertmanager.
type WebhookConfig struct {
	BearerToken     inventory.Secret `yaml:"bearer_token"`
	BearerTokenFile string           `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth       `yaml:"basic_auth"`
	// InsecureNoAuth accepts webhooks from anyone who reaches the port.
	InsecureNoAuth bool  `yaml:"insecure_no_auth"`
	MaxBodyBytes   int64 `yaml:"max_body_bytes"`
}

// BasicAuth is a user and password Alertmanager sends.
type BasicAuth struct {
	Username     string           `yaml:"username"`
	Password     inventory.Secret `yaml:"password"`
	PasswordFile string           `yaml:"password_file"`
}

// Budget is at most Max actions per Window.
type Budget struct {
	Max    int      `yaml:"max"`
	Window Duration `yaml:"window"`
}

// BudgetsConfig are the limits beyond which a person decides.
type BudgetsConfig struct {
	// Restarts per host and service (restart, console_restart,
	// restart_over_load).
	Restarts Budget `yaml:"restarts"`
	// Reboots per host (power_cycle).
	Reboots Budget `yaml:"reboots"`
	// ConcurrentActions bounds the restarts and reboots in progress across
	// the fleet: many hosts failing at once is more likely the prober's
	// network than the hosts.
	ConcurrentActions int `yaml:"concurrent_actions"`
}

// LadderConfig times the steps.
type LadderConfig struct {
	CommandTimeout   Duration `yaml:"command_timeout"`
	KillAfter        Duration `yaml:"kill_after"`
	ConnectTimeout   Duration `yaml:"connect_timeout"`
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	OutOfBandTimeout Duration `yaml:"out_of_band_timeout"`
	ProbeTimeout     Duration `yaml:"probe_timeout"`
	VerifyDelay      Duration `yaml:"verify_delay"`
	VerifyInterval   Duration `yaml:"verify_interval"`
	VerifyAttempts   int      `yaml:"verify_attempts"`
	RebootWait       Duration `yaml:"reboot_wait"`
	ShutdownGrace    Duration `yaml:"shutdown_grace"`
}

// MailConfig is the SMTP smarthost and the emails' form.
type MailConfig struct {
	Smarthost          string           `yaml:"smarthost"`
	From               string           `yaml:"from"`
	TLS                string           `yaml:"tls"`
	ServerName         string           `yaml:"server_name"`
	CAFile             string           `yaml:"ca_file"`
	InsecureSkipVerify bool             `yaml:"insecure_skip_verify"`
	Username           string           `yaml:"username"`
	Password           inventory.Secret `yaml:"password"`
	PasswordFile       string           `yaml:"password_file"`
	Hello              string           `yaml:"hello"`
	Timeout            Duration         `yaml:"timeout"`
	Retry              RetryConfig      `yaml:"retry"`
	// Templates are globs of template files that override the embedded
	// ones (Alertmanager's template language).
	Templates []string `yaml:"templates"`
	// TimeZone of the times in emails.
	TimeZone string `yaml:"timezone"`
}

// RetryConfig is the outbox's backoff.
type RetryConfig struct {
	Initial     Duration `yaml:"initial"`
	Max         Duration `yaml:"max"`
	GiveUpAfter Duration `yaml:"give_up_after"`
}

// OperatorsConfig is who "investigates".
type OperatorsConfig struct {
	Emails   []string           `yaml:"emails"`
	Language inventory.Language `yaml:"language"`
}

// LoadConfig reads and validates the configuration at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig validates a configuration held in memory; name is used in
// messages and to resolve relative paths.
func ParseConfig(data []byte, name string) (*Config, error) {
	var c Config
	idx, err := config.Decode(data, name, "configuration", &c)
	if err != nil {
		return nil, err
	}
	c.File = name
	v := &checker{config.NewChecker(name, idx)}
	c.defaults()
	v.config(&c)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// Duration is a duration as Prometheus writes them: 30s, 5m, 1h, 6h, 1d.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler, with the line of a bad value.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	md, err := model.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q (want 30s, 5m, 1h, ...)", n.Line, n.Value)}}
	}
	*d = Duration(md)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String renders the duration as it is written.
func (d Duration) String() string { return model.Duration(d).String() }

func (c *Config) defaults() {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Journal.Path == "" {
		c.Journal.Path = DefaultJournalPath
	}
	if c.Journal.OutputLimitBytes == 0 {
		c.Journal.OutputLimitBytes = DefaultOutputLimit
	}
	if c.Webhook.MaxBodyBytes == 0 {
		c.Webhook.MaxBodyBytes = DefaultMaxBodyBytes
	}
	b := &c.Budgets
	if b.Restarts.Max == 0 {
		b.Restarts.Max = DefaultRestartBudget
	}
	setDuration(&b.Restarts.Window, DefaultRestartWindow)
	if b.Reboots.Max == 0 {
		b.Reboots.Max = DefaultRebootBudget
	}
	setDuration(&b.Reboots.Window, DefaultRebootWindow)
	if b.ConcurrentActions == 0 {
		b.ConcurrentActions = DefaultConcurrentActs
	}
	l := &c.Ladder
	setDuration(&l.CommandTimeout, DefaultCommandTimeout)
	setDuration(&l.KillAfter, DefaultKillAfter)
	setDuration(&l.ConnectTimeout, DefaultConnectTimeout)
	setDuration(&l.HandshakeTimeout, DefaultHandshake)
	setDuration(&l.OutOfBandTimeout, DefaultOutOfBand)
	setDuration(&l.ProbeTimeout, DefaultProbeTimeout)
	setDuration(&l.VerifyDelay, DefaultVerifyDelay)
	setDuration(&l.VerifyInterval, DefaultVerifyInterval)
	if l.VerifyAttempts == 0 {
		l.VerifyAttempts = DefaultVerifyAttempts
	}
	setDuration(&l.RebootWait, DefaultRebootWait)
	setDuration(&l.ShutdownGrace, DefaultShutdownGrace)
	m := &c.Mail
	if m.TLS == "" {
		m.TLS = rmail.StartTLS
	}
	setDuration(&m.Timeout, DefaultMailTimeout)
	setDuration(&m.Retry.Initial, DefaultRetryInitial)
	setDuration(&m.Retry.Max, DefaultRetryMax)
	setDuration(&m.Retry.GiveUpAfter, DefaultRetryGiveUp)
	if m.TimeZone == "" {
		m.TimeZone = DefaultTimeZone
	}
	if c.Operators.Language == "" {
		c.Operators.Language = DefaultOperatorsLocale
	}
}

// checker collects located validation errors.
type checker struct{ *config.Checker }

func (v *checker) fail(field, format string, args ...any) { v.Fail(field, format, args...) }

// secret resolves a value-or-file pair; required says one must be set.
func (v *checker) secret(field string, val inventory.Secret, file string, required bool) inventory.Secret {
	return v.Secret(field, val, file, required)
}

func (v *checker) positive(field string, d Duration) {
	if d < 0 {
		v.fail(field, "must not be negative, got %s", d)
	}
}

func (v *checker) config(c *Config) {
	if c.InventoryFile == "" {
		v.fail("inventory_file", "the inventory file is required")
	}
	c.InventoryFile = v.Path(c.InventoryFile)
	c.Journal.Path = v.Path(c.Journal.Path)
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("external_url", "invalid URL %q (want http:// or https:// with a host)", c.ExternalURL)
		}
	}
	if c.Workers < 1 || c.Workers > 256 {
		v.fail("workers", "must be 1-256, got %d", c.Workers)
	}
	if c.Journal.OutputLimitBytes < 256 || c.Journal.OutputLimitBytes > 16<<20 {
		v.fail("journal.output_limit_bytes", "must be 256 to 16777216, got %d", c.Journal.OutputLimitBytes)
	}
	v.webhook(&c.Webhook)
	for _, b := range []struct {
		field string
		b     Budget
	}{{"budgets.restarts", c.Budgets.Restarts}, {"budgets.reboots", c.Budgets.Reboots}} {
		if b.b.Max < 0 {
			v.fail(b.field+".max", "must not be negative (0 is the default; a budget cannot be switched off)")
		}
		if b.b.Window <= 0 {
			v.fail(b.field+".window", "must be positive")
		}
	}
	if c.Budgets.ConcurrentActions < 1 {
		v.fail("budgets.concurrent_actions", "must be at least 1, got %d", c.Budgets.ConcurrentActions)
	}
	l := c.Ladder
	for field, d := range map[string]Duration{
		"ladder.command_timeout": l.CommandTimeout, "ladder.kill_after": l.KillAfter, "ladder.connect_timeout": l.ConnectTimeout,
		"ladder.handshake_timeout": l.HandshakeTimeout, "ladder.out_of_band_timeout": l.OutOfBandTimeout,
		"ladder.probe_timeout": l.ProbeTimeout, "ladder.verify_delay": l.VerifyDelay, "ladder.verify_interval": l.VerifyInterval,
		"ladder.reboot_wait": l.RebootWait, "ladder.shutdown_grace": l.ShutdownGrace,
		"mail.timeout": c.Mail.Timeout, "mail.retry.initial": c.Mail.Retry.Initial, "mail.retry.max": c.Mail.Retry.Max,
		"mail.retry.give_up_after": c.Mail.Retry.GiveUpAfter,
	} {
		v.positive(field, d)
	}
	if l.VerifyAttempts < 1 || l.VerifyAttempts > 100 {
		v.fail("ladder.verify_attempts", "must be 1-100, got %d", l.VerifyAttempts)
	}
	if c.Mail.Retry.Max < c.Mail.Retry.Initial {
		v.fail("mail.retry.max", "must not be below mail.retry.initial")
	}
	v.mail(c)
	if len(c.Operators.Emails) == 0 {
		v.fail("operators.emails", "at least one address is required: escalations go there")
	}
	for i, a := range c.Operators.Emails {
		if _, err := mail.ParseAddress(a); err != nil {
			v.fail("operators.emails["+strconv.Itoa(i)+"]", "invalid email address %q", a)
		}
	}
	if c.Operators.Language != inventory.Japanese && c.Operators.Language != inventory.English {
		v.fail("operators.language", "unknown language %q (want ja or en)", c.Operators.Language)
	}
}

func (v *checker) webhook(w *WebhookConfig) {
	w.BearerToken = v.secret("webhook.bearer_token", w.BearerToken, w.BearerTokenFile, false)
	hasBearer := !w.BearerToken.IsZero() || w.BearerTokenFile != ""
	if b := w.BasicAuth; b != nil {
		if b.Username == "" {
			v.fail("webhook.basic_auth.username", "username is required")
		}
		b.Password = v.secret("webhook.basic_auth.password", b.Password, b.PasswordFile, true)
		if hasBearer {
			v.fail("webhook.basic_auth", "set bearer_token or basic_auth, not both")
		}
	}
	hasAuth := hasBearer || w.BasicAuth != nil
	switch {
	case hasAuth && w.InsecureNoAuth:
		v.fail("webhook.insecure_no_auth", "authentication is configured: remove insecure_no_auth")
	case !hasAuth && !w.InsecureNoAuth:
		v.fail("webhook", "set bearer_token(_file) or basic_auth, as Alertmanager's webhook http_config sends it (or insecure_no_auth: true, for a remediator only Alertmanager can reach)")
	}
	if w.MaxBodyBytes < 1024 || w.MaxBodyBytes > 256<<20 {
		v.fail("webhook.max_body_bytes", "must be 1024 to 268435456, got %d", w.MaxBodyBytes)
	}
}

func (v *checker) mail(c *Config) {
	m := &c.Mail
	if m.Smarthost == "" {
		v.fail("mail.smarthost", "the SMTP server (host:port) is required")
	} else if _, port, err := net.SplitHostPort(m.Smarthost); err != nil || port == "" {
		v.fail("mail.smarthost", "invalid host:port %q", m.Smarthost)
	}
	if m.From == "" {
		v.fail("mail.from", "the sender address is required")
	} else if _, err := mail.ParseAddress(m.From); err != nil {
		v.fail("mail.from", "invalid email address %q", m.From)
	}
	switch m.TLS {
	case rmail.StartTLS, rmail.Opportunistic, rmail.Implicit, rmail.None:
	default:
		v.fail("mail.tls", "unknown mode %q (want starttls, opportunistic, tls or none)", m.TLS)
	}
	m.CAFile = v.Path(m.CAFile)
	if m.CAFile != "" {
		if _, err := os.Stat(m.CAFile); err != nil {
			v.fail("mail.ca_file", "%v", err)
		}
	}
	m.Password = v.secret("mail.password", m.Password, m.PasswordFile, false)
	if m.Username == "" && !m.Password.IsZero() {
		v.fail("mail.username", "a password without a username")
	}
	if m.Username != "" && m.Password.IsZero() {
		v.fail("mail.password", "username %q without a password", m.Username)
	}
	for i, g := range m.Templates {
		m.Templates[i] = v.Path(g)
		if _, err := filepath.Glob(m.Templates[i]); err != nil {
			v.fail("mail.templates["+strconv.Itoa(i)+"]", "invalid glob %q: %v", g, err)
		}
	}
	loc, err := time.LoadLocation(m.TimeZone)
	if err != nil {
		v.fail("mail.timezone", "unknown time zone %q", m.TimeZone)
	}
	c.Location = loc
}

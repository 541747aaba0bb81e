// Package inventory loads the fleet description that the exporter and the
// remediator share: customers, their hosts, and what each host overrides of
// the runbook registry.
package inventory

import (
	"github.com/mamori-ops/mamori/runbook"
)

// Language of a customer's emails.
type Language string

const (
	Japanese Language = "ja"
	English  Language = "en"
)

// ServiceManager says how services are restarted on a host.
type ServiceManager string

const (
	Systemd ServiceManager = "systemd"
	SysV    ServiceManager = "sysv"
)

// Inventory is the whole fleet.
type Inventory struct {
	Defaults  HostDefaults `yaml:"defaults"`
	Customers []Customer   `yaml:"customers"`

	// File is where the inventory was read from, for messages.
	File string `yaml:"-" json:"-"`
}

// HostDefaults apply to every host that does not set the field itself.
type HostDefaults struct {
	OSFamily       runbook.OSFamily `yaml:"os_family"`
	ServiceManager ServiceManager   `yaml:"service_manager"`
	SSH            SSH              `yaml:"ssh"`
}

// Customer is one contract.
type Customer struct {
	Name     string        `yaml:"name"`
	Plan     runbook.Plan  `yaml:"plan"`
	Language Language      `yaml:"language"`
	Contacts []string      `yaml:"contacts"`
	Agreed   AgreedOptions `yaml:"agreed"`
	Hosts    []*Host       `yaml:"hosts"`
}

// AgreedOptions are what the customer agreed to in advance, case by case.
type AgreedOptions struct {
	// MailPasswordReset allows the mail queue ladder to reset the password
	// of an account that floods the queue, to an agreed value.
	MailPasswordReset *PasswordReset `yaml:"mail_password_reset"`
}

// PasswordReset is the agreement to reset a mail account's password.
type PasswordReset struct {
	// Password is the agreed new password; PasswordFile reads it from a file.
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Command is the argv run on the host; {account} is replaced by the
	// account found by the queue analysis, and the password is given on
	// standard input, never in argv.
	Command []string `yaml:"command"`
}

// Host is one managed server.
type Host struct {
	Name           string           `yaml:"name"`
	Address        string           `yaml:"address"`
	OSFamily       runbook.OSFamily `yaml:"os_family"`
	ServiceManager ServiceManager   `yaml:"service_manager"`
	SSH            SSH              `yaml:"ssh"`
	OutOfBand      OutOfBand        `yaml:"out_of_band"`
	// Units overrides the registry's unit name of a canonical service.
	Units map[string]string `yaml:"units"`
	// Enable switches on checks outside the customer's plan; Disable
	// switches off checks of the plan.
	Enable  []string                 `yaml:"enable"`
	Disable []string                 `yaml:"disable"`
	Checks  map[string]CheckOverride `yaml:"checks"`

	// Customer is the customer the host belongs to, set by the loader.
	Customer *Customer `yaml:"-" json:"-"`
	checks   []HostCheck
}

// SSH says how the remediator reaches a host.
type SSH struct {
	// Address defaults to the host's address.
	Address        string `yaml:"address"`
	Port           int    `yaml:"port"`
	User           string `yaml:"user"`
	KeyFile        string `yaml:"key_file"`
	KnownHostsFile string `yaml:"known_hosts_file"`
	// Agent uses the SSH agent at $SSH_AUTH_SOCK instead of a key file.
	Agent bool `yaml:"agent"`
}

// OutOfBand is the path to a host when SSH is down: a serial or hypervisor
// console, IPMI, or a cloud API, as commands run where the remediator runs.
type OutOfBand struct {
	// Console runs a command on the host's console: the remote argv is
	// appended to it.
	Console []string `yaml:"console"`
	// PowerCycle reboots the host.
	PowerCycle []string `yaml:"power_cycle"`
}

// CheckOverride changes one check of one host.
type CheckOverride struct {
	Port int `yaml:"port"`
	// Service replaces the check's canonical service (e.g. ftp → vsftpd).
	Service string `yaml:"service"`
	// Thresholds by level (alert, restart).
	Thresholds map[runbook.Level]float64 `yaml:"thresholds"`
	// URL is the address the url check requests.
	URL string `yaml:"url"`
	// BodyMatch is a regular expression the response body must match.
	BodyMatch string `yaml:"body_match"`
	// ServerName is the TLS server name (SNI) to ask for.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts self-signed certificates (Plesk's panel).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// StartTLS upgrades a plain mail dialogue with STARTTLS/STLS.
	StartTLS bool `yaml:"starttls"`
	// Offender names the service the load ladder may restart above the
	// restart threshold.
	Offender string `yaml:"offender"`
	// Ladder replaces the registry's ladder (the customer's own procedure).
	Ladder []runbook.Action `yaml:"ladder"`
}

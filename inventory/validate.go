package inventory

import (
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mamori-ops/mamori/internal/config"
	"github.com/mamori-ops/mamori/runbook"
)

// Defaults the inventory documents (see deploy/inventory.example.yml).
const (
	DefaultOSFamily       = runbook.RHEL
	DefaultServiceManager = Systemd
	DefaultPlan           = runbook.Standard
	DefaultLanguage       = Japanese
	DefaultSSHPort        = 22
	DefaultSSHUser        = "root"
)

var (
	// nameRE is what customer and host names may look like: they become
	// label values and appear in paths, so no spaces or shell characters.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	// unitRE is the allow-list shape of a unit name placed into commands.
	unitRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$`)
)

func (inv *Inventory) applyDefaults() {
	d := &inv.Defaults
	if d.OSFamily == "" {
		d.OSFamily = DefaultOSFamily
	}
	if d.ServiceManager == "" {
		d.ServiceManager = DefaultServiceManager
	}
	if d.SSH.Port == 0 {
		d.SSH.Port = DefaultSSHPort
	}
	if d.SSH.User == "" {
		d.SSH.User = DefaultSSHUser
	}
	for ci := range inv.Customers {
		c := &inv.Customers[ci]
		if c.Plan == "" {
			c.Plan = DefaultPlan
		}
		if c.Language == "" {
			c.Language = DefaultLanguage
		}
		for _, h := range c.Hosts {
			if h == nil {
				continue
			}
			h.Customer = c
			if h.OSFamily == "" {
				h.OSFamily = d.OSFamily
			}
			if h.ServiceManager == "" {
				h.ServiceManager = d.ServiceManager
			}
			s := &h.SSH
			if s.Address == "" {
				s.Address = h.Address
			}
			if s.Port == 0 {
				s.Port = d.SSH.Port
			}
			if s.User == "" {
				s.User = d.SSH.User
			}
			if s.KeyFile == "" {
				s.KeyFile = d.SSH.KeyFile
			}
			if s.KnownHostsFile == "" {
				s.KnownHostsFile = d.SSH.KnownHostsFile
			}
			s.Agent = s.Agent || d.SSH.Agent
		}
	}
}

type validator struct{ *config.Checker }

func (v *validator) fail(path, format string, args ...any) { v.Fail(path, format, args...) }

func (v *validator) inventory(inv *Inventory) {
	v.osFamily("defaults.os_family", inv.Defaults.OSFamily)
	v.serviceManager("defaults.service_manager", inv.Defaults.ServiceManager)
	v.port("defaults.ssh.port", inv.Defaults.SSH.Port)
	if len(inv.Customers) == 0 {
		v.fail("customers", "at least one customer is required")
	}
	customers := map[string]string{}
	hosts := map[string]string{}
	for ci := range inv.Customers {
		c := &inv.Customers[ci]
		p := "customers[" + strconv.Itoa(ci) + "]"
		v.name(p+".name", c.Name)
		if prev, dup := customers[c.Name]; dup && c.Name != "" {
			v.fail(p+".name", "customer %q already defined at %s", c.Name, prev)
		}
		customers[c.Name] = p
		v.customer(p, c)
		if len(c.Hosts) == 0 {
			v.fail(p+".hosts", "at least one host is required")
		}
		for hi, h := range c.Hosts {
			hp := p + ".hosts[" + strconv.Itoa(hi) + "]"
			if h == nil {
				v.fail(hp, "empty host")
				continue
			}
			if prev, dup := hosts[h.Name]; dup && h.Name != "" {
				v.fail(hp+".name", "host %q already defined at %s", h.Name, prev)
			}
			hosts[h.Name] = hp
			v.host(hp, h, inv.Defaults)
		}
	}
}

func (v *validator) customer(p string, c *Customer) {
	if !c.Plan.Valid() {
		v.fail(p+".plan", "unknown plan %q (want standard or plus)", c.Plan)
	}
	if c.Language != Japanese && c.Language != English {
		v.fail(p+".language", "unknown language %q (want ja or en)", c.Language)
	}
	if len(c.Contacts) == 0 {
		v.fail(p+".contacts", "at least one contact address is required: the runbook always tells the customer")
	}
	for i, a := range c.Contacts {
		if _, err := mail.ParseAddress(a); err != nil {
			v.fail(p+".contacts["+strconv.Itoa(i)+"]", "invalid email address %q", a)
		}
	}
	if r := c.Agreed.MailPasswordReset; r != nil {
		rp := p + ".agreed.mail_password_reset"
		r.Password = v.Secret(rp+".password", r.Password, r.PasswordFile, true)
		if len(r.Command) == 0 {
			v.fail(rp+".command", "the command that resets a mail password is required")
		} else if !anyContains(r.Command, "{account}") {
			v.fail(rp+".command", "must contain {account}")
		}
		for i, a := range r.Command {
			if strings.Contains(a, "{password}") {
				v.fail(rp+".command["+strconv.Itoa(i)+"]", "the password is given on standard input, never in argv")
			}
		}
	}
}

func (v *validator) host(p string, h *Host, d HostDefaults) {
	v.name(p+".name", h.Name)
	if h.Address == "" {
		v.fail(p+".address", "address is required")
	} else if !validAddress(h.Address) {
		v.fail(p+".address", "invalid address %q (want an IP address or a DNS name)", h.Address)
	}
	// Fields a host inherits from defaults were checked there already.
	if h.OSFamily != d.OSFamily {
		v.osFamily(p+".os_family", h.OSFamily)
	}
	if h.ServiceManager != d.ServiceManager {
		v.serviceManager(p+".service_manager", h.ServiceManager)
	}
	if h.SSH.Address != h.Address && !validAddress(h.SSH.Address) {
		v.fail(p+".ssh.address", "invalid address %q", h.SSH.Address)
	}
	if h.SSH.Port != d.SSH.Port {
		v.port(p+".ssh.port", h.SSH.Port)
	}
	if h.SSH.KeyFile != "" && h.SSH.Agent {
		v.fail(p+".ssh.agent", "set key_file or agent, not both")
	}
	for _, cmd := range []struct {
		field string
		argv  []string
	}{{"console", h.OutOfBand.Console}, {"power_cycle", h.OutOfBand.PowerCycle}} {
		if len(cmd.argv) > 0 && strings.TrimSpace(cmd.argv[0]) == "" {
			v.fail(p+".out_of_band."+cmd.field, "the command's first element is empty")
		}
	}
	for _, svc := range sortedKeys(h.Units) {
		up := p + ".units." + svc
		if _, ok := runbook.ServiceByName(svc); !ok {
			v.fail(up, "unknown service %q", svc)
		}
		if !unitRE.MatchString(h.Units[svc]) {
			v.fail(up, "invalid unit name %q", h.Units[svc])
		}
	}
	for _, list := range []struct {
		field string
		ids   []string
	}{{"enable", h.Enable}, {"disable", h.Disable}} {
		for i, id := range list.ids {
			if _, ok := runbook.CheckByID(id); !ok {
				v.fail(p+"."+list.field+"["+strconv.Itoa(i)+"]", "unknown check %q", id)
			}
		}
	}
	for _, id := range h.Disable {
		if slices.Contains(h.Enable, id) {
			v.fail(p+".disable", "check %q is both enabled and disabled", id)
		}
	}
	for _, id := range sortedKeys(h.Checks) {
		v.override(p+".checks."+id, id, h.Checks[id])
	}
	if url, _ := runbook.CheckByID("url"); h.has(url) {
		if o := h.Checks["url"]; o.URL == "" {
			v.fail(p+".checks.url.url", "the url check needs the URL to request")
		}
	}
}

func (v *validator) override(p, id string, o CheckOverride) {
	c, ok := runbook.CheckByID(id)
	if !ok {
		v.fail(p, "unknown check %q", id)
		return
	}
	if o.Port != 0 {
		v.port(p+".port", o.Port)
		if c.Kind != runbook.Probe || c.Protocol == runbook.ICMP {
			v.fail(p+".port", "check %s has no port", id)
		}
	}
	if o.Service != "" {
		if _, ok := runbook.ServiceByName(o.Service); !ok {
			v.fail(p+".service", "unknown service %q", o.Service)
		}
	}
	if o.Offender != "" {
		if _, ok := runbook.ServiceByName(o.Offender); !ok {
			v.fail(p+".offender", "unknown service %q", o.Offender)
		}
	}
	for _, l := range sortedKeys(o.Thresholds) {
		if _, ok := c.Threshold(l); !ok {
			v.fail(p+".thresholds."+string(l), "check %s has no %q threshold", id, l)
		} else if val := o.Thresholds[l]; val <= 0 {
			v.fail(p+".thresholds."+string(l), "threshold must be positive, got %v", val)
		}
	}
	if o.URL != "" {
		if id != "url" {
			v.fail(p+".url", "only the url check takes a URL")
		} else if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail(p+".url", "invalid URL %q (want http:// or https:// with a host)", o.URL)
		}
	}
	if o.BodyMatch != "" {
		if c.Protocol != runbook.HTTP {
			v.fail(p+".body_match", "only HTTP checks match a body")
		} else if _, err := regexp.Compile(o.BodyMatch); err != nil {
			v.fail(p+".body_match", "invalid regular expression: %v", err)
		}
	}
	if o.StartTLS && (c.TLS || !slices.Contains([]runbook.Protocol{runbook.SMTP, runbook.IMAP, runbook.POP3}, c.Protocol)) {
		v.fail(p+".starttls", "STARTTLS applies to plain SMTP, IMAP and POP3 checks only")
	}
	if (o.ServerName != "" || o.InsecureSkipVerify) && !c.TLS && !o.StartTLS && c.ID != "url" {
		v.fail(p, "TLS settings on a check without TLS")
	}
	for i, a := range o.Ladder {
		if !a.Valid() {
			v.fail(p+".ladder["+strconv.Itoa(i)+"]", "unknown action %q", a)
		}
	}
	if n := len(o.Ladder); n > 0 && o.Ladder[n-1] != runbook.ActNotify {
		v.fail(p+".ladder", "a ladder must end with notify: the customer is always told")
	}
}

func (v *validator) name(p, s string) {
	if s == "" {
		v.fail(p, "name is required")
	} else if !nameRE.MatchString(s) {
		v.fail(p, "invalid name %q (letters, digits, '.', '_' and '-')", s)
	}
}

func (v *validator) osFamily(p string, f runbook.OSFamily) {
	if !f.Valid() {
		v.fail(p, "unknown OS family %q (want rhel or debian)", f)
	}
}

func (v *validator) serviceManager(p string, m ServiceManager) {
	if m != Systemd && m != SysV {
		v.fail(p, "unknown service manager %q (want systemd or sysv)", m)
	}
}

func (v *validator) port(p string, n int) {
	if n < 1 || n > 65535 {
		v.fail(p, "port %d out of range 1-65535", n)
	}
}

func validAddress(a string) bool {
	if net.ParseIP(a) != nil {
		return true
	}
	if len(a) > 253 {
		return false
	}
	for _, label := range strings.Split(a, ".") {
		if !hostLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func anyContains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

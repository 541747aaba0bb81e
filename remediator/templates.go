package remediator

import (
	"bytes"
	_ "embed" // the default templates
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/mamori-ops/mamori/remediator/journal"
	"github.com/mamori-ops/mamori/runbook"
)

//go:embed templates/default.tmpl
var defaultTemplates []byte

// Templates render the emails: the embedded defaults, then the files of
// mail.templates, which may redefine any of them. The language is
// Alertmanager's (text/template with its functions).
type Templates struct {
	t *template.Template
	// def are the embedded templates alone: what an email falls back to
	// when a user's template fails at execution (the customer is told in
	// any case).
	def *template.Template
}

func defaults() (*template.Template, error) {
	t, err := template.New()
	if err != nil {
		return nil, err
	}
	if err := t.Parse(bytes.NewReader(defaultTemplates)); err != nil {
		return nil, fmt.Errorf("default templates: %w", err)
	}
	return t, nil
}

// LoadTemplates parses the defaults and the globs.
func LoadTemplates(globs []string) (*Templates, error) {
	t, err := defaults()
	if err != nil {
		return nil, err
	}
	def, err := defaults()
	if err != nil {
		return nil, err
	}
	for _, g := range globs {
		if err := t.FromGlob(g); err != nil {
			return nil, fmt.Errorf("templates %s: %w", g, err)
		}
	}
	return &Templates{t: t, def: def}, nil
}

// Render renders the subject and body of an email of kind (customer,
// operator) in lang (ja, en): the templates mamori.KIND.LANG.subject and
// mamori.KIND.LANG.body. When the configured templates fail, the email is
// rendered with the embedded ones and the error is returned with it.
func (t *Templates) Render(kind, lang string, data *EmailData) (subject, body string, err error) {
	subject, body, err = render(t.t, kind, lang, data)
	if err == nil {
		return subject, body, nil
	}
	s, b, derr := render(t.def, kind, lang, data)
	if derr != nil {
		return "", "", err
	}
	return s, b, fmt.Errorf("%w (sent with the embedded template)", err)
}

func render(t *template.Template, kind, lang string, data *EmailData) (subject, body string, err error) {
	name := "mamori." + kind + "." + lang
	subject, err = t.ExecuteTextString(`{{ template "`+name+`.subject" . }}`, data)
	if err != nil {
		return "", "", fmt.Errorf("template %s.subject: %w", name, err)
	}
	body, err = t.ExecuteTextString(`{{ template "`+name+`.body" . }}`, data)
	if err != nil {
		return "", "", fmt.Errorf("template %s.body: %w", name, err)
	}
	return strings.Join(strings.Fields(subject), " "), strings.TrimLeft(body, "\n"), nil
}

// EmailData is what the templates see.
type EmailData struct {
	Kind       string
	Language   string
	DryRun     bool
	IncidentID int64
	AlertName  string
	// Summary and Description are the alert's annotations.
	Summary     string
	Description string
	Customer    string
	Host        string
	Address     string
	Check       string
	CheckTitle  string
	Watches     string
	Service     string
	Unit        string
	// StartsAt and Now are in the configured time zone.
	StartsAt time.Time
	Now      time.Time
	// Result is the incident's result as it stands when the email is made.
	Result   string
	Resolved bool
	// Report is a ladder that only reports what it found (load, swap,
	// disk, mail queue): the customer decides.
	Report bool
	Steps  []StepData
	// Outputs are the command outputs the runbook puts in the customer's
	// email (top, free, df).
	Outputs []CommandData
	Queue   *QueueAnalysis
	// PasswordReset is the account whose password was reset.
	PasswordReset string
	StatusURL     string
	Labels        map[string]string
}

// StepData is one step in an email.
type StepData struct {
	Index    int
	Action   string
	Outcome  string
	Detail   string
	Service  string
	Unit     string
	Commands []CommandData
	// ForCustomer says whether the customer's email mentions the step.
	ForCustomer bool
	// Command is the step's main command line, for the customer.
	Command string
}

// CommandData is one command in an email.
type CommandData struct {
	Name      string
	Target    string
	Line      string
	Exit      string
	Output    string
	Truncated bool
	DryRun    bool
	Err       string
}

// customerOutput says whether the runbook mails a diagnostic's output to
// the customer (top for load, free for swap, df for disk).
func customerOutput(name string) bool { return name == "top" || name == "free" || name == "df" }

// emailData builds the templates' data from the ladder's journal.
func (l *ladder) emailData(kind, lang string) *EmailData {
	loc := l.cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	d := &EmailData{
		Kind: kind, Language: lang, DryRun: l.dry, IncidentID: l.inc.ID, AlertName: l.inc.AlertName,
		Summary: l.inc.Annotations["summary"], Description: l.inc.Annotations["description"],
		Customer: l.host.Customer.Name, Host: l.host.Name, Address: l.host.Address,
		Check: l.hc.ID, CheckTitle: l.hc.Title, Watches: l.hc.Watches, Service: l.hc.Service,
		StartsAt: l.inc.Key.StartsAt.In(loc), Now: l.e.now().In(loc),
		Result: l.finalResult(), Resolved: l.resolved.Load(), Labels: l.inc.Labels,
	}
	if d.Service != "" {
		d.Unit = l.host.Unit(d.Service)
	}
	d.Report = true
	for _, r := range l.rungs {
		switch r.Action {
		case runbook.ActCheck, runbook.ActSSHConnect, runbook.ActRestart, runbook.ActScopeURL:
			d.Report = false
		}
	}
	if l.cfg.ExternalURL != "" {
		d.StatusURL = strings.TrimRight(l.cfg.ExternalURL, "/") + "/incidents/" + url.PathEscape(strconv.FormatInt(l.inc.ID, 10))
	}
	idx := make([]int, 0, len(l.history))
	for i := range l.history {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		h := l.history[i]
		if !h.Finished() {
			continue
		}
		sd := StepData{Index: i, Action: h.Action, Outcome: h.Outcome, Detail: h.Detail, Service: h.Service}
		if sd.Service != "" {
			sd.Unit = l.host.Unit(sd.Service)
		}
		for _, c := range h.Commands {
			cd := CommandData{Name: c.Name, Target: c.Target, Line: c.Line, Output: c.Output, Truncated: c.Truncated,
				DryRun: c.DryRun, Err: c.Err}
			if c.ExitCode != nil {
				cd.Exit = strconv.Itoa(*c.ExitCode)
			}
			sd.Commands = append(sd.Commands, cd)
			if customerOutput(c.Name) && (c.DryRun || c.ExitCode != nil) {
				d.Outputs = append(d.Outputs, cd)
			}
			switch c.Name {
			case "restart", "reset_password":
				sd.Command = displayLine(c)
			case "console":
				// The remote part: the console tool is the operators' business.
				if cmd, err := l.render("restart", sd.Unit); err == nil && runbook.Action(h.Action) == runbook.ActConsoleRestart {
					sd.Command = strings.Join(cmd.Argv, " ")
				}
			}
		}
		switch runbook.Action(h.Action) {
		case runbook.ActCollect, runbook.ActNotify, runbook.ActAnalyseQueue:
		default:
			sd.ForCustomer = h.Outcome != outSkipped
		}
		if runbook.Action(h.Action) == runbook.ActResetPassword && h.Outcome == outDone {
			d.PasswordReset = l.queueAnalysis().Dominant
		}
		if runbook.Action(h.Action) == runbook.ActAnalyseQueue && h.Outcome == outDone {
			a := l.queueAnalysis()
			d.Queue = &a
		}
		d.Steps = append(d.Steps, sd)
	}
	return d
}

// displayLine is a command as a person would type it: the argv without
// the timeout and detach wrapping.
func displayLine(c journal.Command) string {
	line := c.Line
	if i := strings.Index(line, "timeout --kill-after="); i >= 0 {
		// timeout --kill-after=Ns Ms ARGV...
		rest := strings.Fields(line[i:])
		if len(rest) > 3 {
			argv := rest[3:]
			for j, a := range argv {
				if strings.HasPrefix(a, "<") || strings.HasPrefix(a, ">") || a == "2>&1" || strings.HasSuffix(a, ";") {
					argv = argv[:j]
					break
				}
			}
			return strings.Join(argv, " ")
		}
	}
	return line
}

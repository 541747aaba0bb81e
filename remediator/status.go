package remediator

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/mamori-ops/mamori/remediator/journal"
)

// The JSON API's shapes: stable names, times in RFC 3339, never a secret
// (the journal holds none: passwords go on standard input).

type incidentJSON struct {
	ID           int64             `json:"id"`
	Fingerprint  string            `json:"fingerprint"`
	StartsAt     time.Time         `json:"starts_at"`
	Status       string            `json:"status"`
	AlertName    string            `json:"alertname"`
	Check        string            `json:"check"`
	Host         string            `json:"host"`
	Customer     string            `json:"customer"`
	Service      string            `json:"service"`
	State        string            `json:"state"`
	Decision     string            `json:"decision"`
	Detail       string            `json:"detail,omitempty"`
	Result       string            `json:"result,omitempty"`
	DryRun       bool              `json:"dry_run"`
	ResolvedAt   *time.Time        `json:"resolved_at,omitempty"`
	ReceivedAt   time.Time         `json:"received_at"`
	FinishedAt   *time.Time        `json:"finished_at,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	GeneratorURL string            `json:"generator_url,omitempty"`
	Steps        []stepJSON        `json:"steps,omitempty"`
	Emails       []emailJSON       `json:"emails,omitempty"`
}

type stepJSON struct {
	Index      int           `json:"index"`
	Action     string        `json:"action"`
	Service    string        `json:"service,omitempty"`
	Budget     string        `json:"budget,omitempty"`
	State      string        `json:"state"`
	Outcome    string        `json:"outcome,omitempty"`
	Detail     string        `json:"detail,omitempty"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt *time.Time    `json:"finished_at,omitempty"`
	Commands   []commandJSON `json:"commands,omitempty"`
}

type commandJSON struct {
	Name       string     `json:"name"`
	Target     string     `json:"target"`
	Line       string     `json:"line"`
	DryRun     bool       `json:"dry_run"`
	ExitCode   *int       `json:"exit_code"`
	Output     string     `json:"output,omitempty"`
	Truncated  bool       `json:"truncated,omitempty"`
	Error      string     `json:"error,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

type emailJSON struct {
	ID        int64      `json:"id"`
	Kind      string     `json:"kind"`
	To        []string   `json:"to"`
	Subject   string     `json:"subject"`
	Body      string     `json:"body"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toIncidentJSON(inc *journal.Incident, steps []journal.Step, emails []journal.Email) incidentJSON {
	out := incidentJSON{
		ID: inc.ID, Fingerprint: inc.Key.Fingerprint, StartsAt: inc.Key.StartsAt, Status: inc.Status,
		AlertName: inc.AlertName, Check: inc.Check, Host: inc.Host, Customer: inc.Customer, Service: inc.Service,
		State: string(inc.State), Decision: inc.Decision, Detail: inc.Detail, Result: inc.Result, DryRun: inc.DryRun,
		ResolvedAt: optTime(inc.ResolvedAt), ReceivedAt: inc.ReceivedAt, FinishedAt: optTime(inc.FinishedAt),
		Labels: inc.Labels, GeneratorURL: inc.GeneratorURL,
	}
	for _, s := range steps {
		sj := stepJSON{Index: s.Index, Action: s.Action, Service: s.Service, Budget: s.Budget, State: s.State,
			Outcome: s.Outcome, Detail: s.Detail, StartedAt: s.StartedAt, FinishedAt: optTime(s.FinishedAt)}
		for _, c := range s.Commands {
			sj.Commands = append(sj.Commands, commandJSON{Name: c.Name, Target: c.Target, Line: c.Line, DryRun: c.DryRun,
				ExitCode: c.ExitCode, Output: c.Output, Truncated: c.Truncated, Error: c.Err, StartedAt: c.StartedAt,
				FinishedAt: optTime(c.FinishedAt)})
		}
		out.Steps = append(out.Steps, sj)
	}
	for _, e := range emails {
		out.Emails = append(out.Emails, emailJSON{ID: e.ID, Kind: e.Kind, To: e.To, Subject: e.Subject, Body: e.Body,
			Status: e.Status, Attempts: e.Attempts, LastError: e.LastError, SentAt: optTime(e.SentAt)})
	}
	return out
}

// filter reads ?state=&host=&limit=&before=.
func filter(r *http.Request) (journal.Filter, error) {
	q := r.URL.Query()
	f := journal.Filter{State: journal.State(q.Get("state")), Host: q.Get("host"), Limit: 100}
	switch f.State {
	case "", journal.Queued, journal.Running, journal.Done:
	default:
		return f, errors.New("state must be queued, running or done")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, errors.New("limit must be 1-1000")
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, errors.New("before must be an incident id")
		}
		f.Before = n
	}
	return f, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// serveIncidentsJSON is GET /api/v1/incidents: newest first.
func (a *App) serveIncidentsJSON(w http.ResponseWriter, r *http.Request) {
	f, err := filter(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	list, err := a.journal.List(r.Context(), f)
	if err != nil {
		level.Error(a.logger).Log("msg", "cannot list incidents", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the journal cannot be read"})
		return
	}
	out := make([]incidentJSON, 0, len(list))
	for i := range list {
		out = append(out, toIncidentJSON(&list[i], nil, nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

func (a *App) incident(w http.ResponseWriter, r *http.Request) (*incidentJSON, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "incident id must be a number", http.StatusBadRequest)
		return nil, false
	}
	inc, steps, emails, err := a.journal.Incident(r.Context(), id)
	if errors.Is(err, journal.ErrNotFound) {
		http.Error(w, "no such incident", http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		level.Error(a.logger).Log("msg", "cannot read incident", "incident", id, "err", err)
		http.Error(w, "the journal cannot be read", http.StatusInternalServerError)
		return nil, false
	}
	j := toIncidentJSON(inc, steps, emails)
	return &j, true
}

// serveIncidentJSON is GET /api/v1/incidents/{id}: with steps, commands,
// outputs and emails.
func (a *App) serveIncidentJSON(w http.ResponseWriter, r *http.Request) {
	if j, ok := a.incident(w, r); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

// pageFuncs are the status pages' helpers.
func pageFuncs() template.FuncMap {
	return template.FuncMap{
		"ts": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return ""
				}
				return v.UTC().Format("2006-01-02 15:04:05Z")
			case *time.Time:
				if v == nil {
					return ""
				}
				return v.UTC().Format("2006-01-02 15:04:05Z")
			}
			return ""
		},
		"exit": func(p *int) string {
			if p == nil {
				return "–"
			}
			return strconv.Itoa(*p)
		},
	}
}

// pages are the status page's HTML templates, parsed once per App.
type pages struct {
	status, incident *template.Template
}

func newPages() pages {
	return pages{
		status:   template.Must(template.New("status").Funcs(pageFuncs()).Parse(statusPageHTML)),
		incident: template.Must(template.New("incident").Funcs(pageFuncs()).Parse(incidentPageHTML)),
	}
}

const statusPageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mamori_remediator</title>
<style>
body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
pre{background:#f4f4f4;padding:.5em;max-height:30em;overflow:auto;white-space:pre-wrap}.done{color:#555}.running{color:#a60}.queued{color:#06a}
</style></head><body>
<h1>mamori_remediator</h1>
<p>Version {{ .Version }} · {{ if .DryRun }}<strong>dry-run</strong> · {{ end }}{{ .Running }} ladder(s) running · <a href="/metrics">metrics</a> · <a href="/api/v1/incidents">JSON</a></p>
{{ with .Error }}<p><strong>{{ . }}</strong></p>{{ end }}
<table><tr><th>id</th><th>received</th><th>alert</th><th>check</th><th>host</th><th>customer</th><th>state</th><th>decision</th><th>result</th></tr>
{{ range .Incidents }}<tr class="{{ .State }}"><td><a href="/incidents/{{ .ID }}">{{ .ID }}</a></td><td>{{ ts .ReceivedAt }}</td><td>{{ .AlertName }} ({{ .Status }})</td>
<td>{{ .Check }}</td><td>{{ .Host }}</td><td>{{ .Customer }}</td><td>{{ .State }}</td><td>{{ .Decision }}{{ with .Detail }}<br><small>{{ . }}</small>{{ end }}</td><td>{{ .Result }}{{ if .DryRun }} (dry-run){{ end }}</td></tr>
{{ end }}</table>
{{ with .Next }}<p><a href="/?before={{ . }}">older</a></p>{{ end }}
</body></html>`

const incidentPageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>incident {{ .ID }} · mamori_remediator</title>
<style>
body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
pre{background:#f4f4f4;padding:.5em;max-height:30em;overflow:auto;white-space:pre-wrap}
</style></head><body>
<p><a href="/">all incidents</a> · <a href="/api/v1/incidents/{{ .ID }}">JSON</a></p>
<h1>Incident {{ .ID }}: {{ .AlertName }}</h1>
<table>
<tr><th>check</th><td>{{ .Check }}</td></tr><tr><th>host</th><td>{{ .Host }}</td></tr><tr><th>customer</th><td>{{ .Customer }}</td></tr>
<tr><th>alert</th><td>{{ .Status }}, started {{ ts .StartsAt }}, fingerprint {{ .Fingerprint }}{{ with .GeneratorURL }} · <a href="{{ . }}">source</a>{{ end }}</td></tr>
<tr><th>state</th><td>{{ .State }}{{ with .Result }}: {{ . }}{{ end }}{{ if .DryRun }} (dry-run){{ end }}</td></tr>
<tr><th>decision</th><td>{{ .Decision }}{{ with .Detail }}: {{ . }}{{ end }}</td></tr>
<tr><th>received</th><td>{{ ts .ReceivedAt }}</td></tr><tr><th>resolved</th><td>{{ ts .ResolvedAt }}</td></tr><tr><th>finished</th><td>{{ ts .FinishedAt }}</td></tr>
<tr><th>labels</th><td>{{ range $k, $v := .Labels }}{{ $k }}="{{ $v }}"<br>{{ end }}</td></tr>
</table>
<h2>Steps</h2>
{{ range .Steps }}<h3>{{ .Index }}. {{ .Action }} → {{ .Outcome }}{{ if ne .State "finished" }} ({{ .State }}){{ end }}</h3>
<p>{{ ts .StartedAt }} – {{ ts .FinishedAt }}{{ with .Budget }} · spends the {{ . }} budget{{ end }}{{ with .Detail }}<br>{{ . }}{{ end }}</p>
{{ range .Commands }}<p><code>{{ .Target }}$ {{ .Line }}</code> · exit {{ exit .ExitCode }}{{ if .DryRun }} · dry-run{{ end }}{{ with .Error }} · {{ . }}{{ end }}</p>
{{ with .Output }}<pre>{{ . }}</pre>{{ end }}{{ end }}
{{ else }}<p>No step ran.</p>{{ end }}
<h2>Emails</h2>
{{ range .Emails }}<h3>{{ .Kind }}: {{ .Subject }}</h3><p>to {{ range .To }}{{ . }} {{ end }}· {{ .Status }}, {{ .Attempts }} attempt(s){{ with .LastError }} · last error: {{ . }}{{ end }}{{ with .SentAt }} · sent {{ ts . }}{{ end }}</p>
<pre>{{ .Body }}</pre>{{ else }}<p>No email.</p>{{ end }}
</body></html>`

// serveStatusHTML is the status page: the latest incidents.
func (a *App) serveStatusHTML(w http.ResponseWriter, r *http.Request) {
	data := struct {
		Version   string
		DryRun    bool
		Running   int
		Incidents []incidentJSON
		Next      int64
		Error     string
	}{Version: version.Version, DryRun: a.current().cfg.DryRun, Running: a.sched.Running()}
	f, err := filter(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	list, err := a.journal.List(r.Context(), f)
	if err != nil {
		level.Error(a.logger).Log("msg", "cannot list incidents", "err", err)
		data.Error = "the journal cannot be read"
	}
	for i := range list {
		data.Incidents = append(data.Incidents, toIncidentJSON(&list[i], nil, nil))
	}
	if len(list) == f.Limit {
		data.Next = list[len(list)-1].ID
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := a.pages.status.Execute(w, data); err != nil {
		level.Error(a.logger).Log("msg", "status page", "err", err)
	}
}

// serveIncidentHTML shows one incident with its steps, outputs and emails.
func (a *App) serveIncidentHTML(w http.ResponseWriter, r *http.Request) {
	j, ok := a.incident(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := a.pages.incident.Execute(w, j); err != nil {
		level.Error(a.logger).Log("msg", "incident page", "err", err)
	}
}

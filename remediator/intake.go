package remediator

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/alertmanager/template"

	"github.com/mamori-ops/mamori/remediator/journal"
)

// webhookMessage is Alertmanager's webhook payload, version 4
// (notify/webhook.Message), read with the template package's types: the
// webhook package itself drags in gRPC, Kafka and memberlist.
type webhookMessage struct {
	*template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// webhookVersion is the payload version this remediator understands.
const webhookVersion = "4"

// authenticator checks the webhook's credentials, in constant time.
type authenticator struct {
	bearer     []byte
	user, pass []byte
	none       bool
}

func newAuthenticator(w WebhookConfig) authenticator {
	switch {
	case !w.BearerToken.IsZero():
		return authenticator{bearer: []byte(w.BearerToken.Reveal())}
	case w.BasicAuth != nil:
		return authenticator{user: []byte(w.BasicAuth.Username), pass: []byte(w.BasicAuth.Password.Reveal())}
	}
	return authenticator{none: true}
}

func (a authenticator) allow(r *http.Request) bool {
	switch {
	case a.none:
		return true
	case a.bearer != nil:
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), a.bearer) == 1
	default:
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), a.user)
		passOK := subtle.ConstantTimeCompare([]byte(p), a.pass)
		return ok && userOK&passOK == 1
	}
}

func (a authenticator) challenge() string {
	if a.bearer != nil {
		return `Bearer realm="mamori_remediator"`
	}
	return `Basic realm="mamori_remediator"`
}

// intakeAnswer is the webhook's JSON answer.
type intakeAnswer struct {
	Status     string  `json:"status"`
	Accepted   int     `json:"accepted"`
	Duplicates int     `json:"duplicates"`
	Rejected   int     `json:"rejected"`
	Resolved   int     `json:"resolved"`
	Incidents  []int64 `json:"incidents"`
	Error      string  `json:"error,omitempty"`
}

// serveWebhook is the intake stage: authenticate, bound and decode the
// body, check each alert, run match and guard, record everything in one
// journal transaction, pass the outcome to dedup, and answer. Nothing here
// runs a ladder: the scheduler does, from the journal.
func (a *App) serveWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code, ans := a.intake(w, r)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", a.current().auth.challenge())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ans)
	a.metrics.webhook.WithLabelValues(strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

func (a *App) intake(w http.ResponseWriter, r *http.Request) (int, intakeAnswer) {
	fail := func(code int, format string, args ...any) (int, intakeAnswer) {
		msg := fmt.Sprintf(format, args...)
		level.Warn(a.logger).Log("msg", "webhook refused", "code", code, "err", msg, "remote", r.RemoteAddr)
		return code, intakeAnswer{Status: "error", Error: msg}
	}
	rc := a.current()
	if !rc.auth.allow(r) {
		return fail(http.StatusUnauthorized, "missing or wrong credentials")
	}
	body := http.MaxBytesReader(w, r.Body, rc.cfg.Webhook.MaxBodyBytes)
	msg, err := decodeWebhook(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", tooBig.Limit)
		}
		return fail(http.StatusBadRequest, "%v", err)
	}

	now := a.now()
	states := make([]*alertState, len(msg.Alerts))
	arrivals := make([]journal.Arrival, len(msg.Alerts))
	for i, al := range msg.Alerts {
		st := &alertState{alert: al, received: now, dryRun: rc.cfg.DryRun}
		// Each alert by its own status; a resolved one is matched too, so
		// that its record reads like its firing twin.
		match(rc.inv, st)
		guard(st)
		states[i] = st
		arrivals[i] = journal.Arrival{Incident: st.incident(), Accepted: st.accepted()}
	}
	results, err := a.journal.Accept(r.Context(), arrivals)
	if err != nil {
		level.Error(a.logger).Log("msg", "cannot journal the webhook: answering 500 so that Alertmanager retries", "err", err)
		return http.StatusInternalServerError, intakeAnswer{Status: "error", Error: "the journal cannot be written"}
	}
	for _, al := range msg.Alerts {
		a.metrics.alertsReceived.WithLabelValues(al.Status).Inc()
	}
	dedup(states, results, a.metrics, a.sched, a.logger)
	ans := intakeAnswer{Status: "ok", Incidents: make([]int64, 0, len(results))}
	for _, res := range results {
		ans.Incidents = append(ans.Incidents, res.IncidentID)
		switch res.Outcome {
		case journal.New:
			ans.Accepted++
		case journal.Rejected:
			ans.Rejected++
		case journal.Duplicate:
			ans.Duplicates++
		default:
			ans.Resolved++
		}
	}
	return http.StatusOK, ans
}

// decodeWebhook reads and checks one payload.
func decodeWebhook(r io.Reader) (*webhookMessage, error) {
	dec := json.NewDecoder(r)
	var msg webhookMessage
	if err := dec.Decode(&msg); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, errors.New("malformed JSON: data after the payload")
	}
	if msg.Data == nil {
		return nil, errors.New("not an Alertmanager webhook payload")
	}
	if msg.Version != webhookVersion {
		return nil, fmt.Errorf("webhook version %q is not supported (want %q)", msg.Version, webhookVersion)
	}
	for i, al := range msg.Alerts {
		switch {
		case al.Status != "firing" && al.Status != "resolved":
			return nil, fmt.Errorf("alert %d: status %q (want firing or resolved)", i, clip(al.Status))
		case al.Fingerprint == "" || len(al.Fingerprint) > 128 || strings.ContainsFunc(al.Fingerprint, func(r rune) bool { return r <= ' ' || r > '~' }):
			return nil, fmt.Errorf("alert %d: missing or malformed fingerprint", i)
		case al.StartsAt.IsZero():
			return nil, fmt.Errorf("alert %d: missing startsAt", i)
		}
	}
	return &msg, nil
}

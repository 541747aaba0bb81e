package probe

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// HTTP requests a page over HTTP or HTTPS and checks the status (2xx and
// 3xx are success) and, where the inventory gives body_match, the body.
// The http, https and plesk checks ask the host itself (connecting to its
// address, with its name in Host and SNI) and take a redirect as an answer:
// the web server answered. The url check requests the inventory's URL and
// follows up to Config.HTTPMaxRedirects redirects. Certificates are
// verified unless the check's insecure_skip_verify says otherwise (Plesk's
// self-signed panel); their earliest expiry is reported either way.
//
// The request is written by hand over the prober's own connection (one
// request, "Connection: close") and the answer read with
// http.ReadResponse, so the TLS handshake, the deadline and the transcript
// are the same as every other dialogue's, and no connection pool outlives
// the probe.
type HTTP struct {
	s *settings
}

const (
	// maxBody bounds the body read for body_match.
	maxBody = 1 << 20
	// userAgent is what the prober calls itself.
	userAgent = "mamori_probe"
)

// Probe implements Prober.
func (p *HTTP) Probe(ctx context.Context, t Target, tr *Transcript) Result {
	var r Result
	hop := t
	for redirects := 0; ; redirects++ {
		resp, body, err := p.get(ctx, hop, tr, &r)
		if err != nil {
			return r.fail(err)
		}
		if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && loc != "" && t.MaxRedirects > 0 {
			if redirects >= t.MaxRedirects {
				return r.fail(failf(ReasonProtocol, "more than %d redirects", t.MaxRedirects))
			}
			next, err := hop.URL.Parse(loc)
			if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Host == "" {
				return r.fail(failf(ReasonProtocol, "redirect to an unusable location %q", loc))
			}
			hop = redirectTarget(hop, next)
			tr.Printf("following redirect %d to %s", redirects+1, next.Redacted())
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return r.fail(failf(ReasonHTTPStatus, "status %s", resp.Status))
		}
		if t.BodyMatch != nil && !t.BodyMatch.Match(body) {
			return r.fail(failf(ReasonBodyMismatch, "body (%d bytes) does not match %q", len(body), t.BodyMatch))
		}
		return r.ok()
	}
}

// get runs one request on a fresh connection.
func (p *HTTP) get(ctx context.Context, t Target, tr *Transcript, r *Result) (*http.Response, []byte, error) {
	c, err := connect(ctx, p.s, t, tr, t.URL.Scheme == "https", r)
	if err != nil {
		return nil, nil, err
	}
	defer c.close()
	// One request, written as is: "Connection: close", no compression, no
	// keep-alive, nothing pooled.
	request := "GET " + t.URL.RequestURI() + " HTTP/1.1\r\nHost: " + t.URL.Host + "\r\nUser-Agent: " + userAgent +
		"\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if tr != nil {
		for _, l := range strings.Split(strings.TrimSuffix(request, "\r\n\r\n"), "\r\n") {
			tr.Sent(l)
		}
	}
	if err := c.write([]byte(request)); err != nil {
		return nil, nil, stageError(ReasonProtocol, "request", err)
	}
	req := &http.Request{Method: http.MethodGet, URL: t.URL, Host: t.URL.Host}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, nil, stageError(ReasonProtocol, "response", err)
	}
	if tr != nil {
		tr.Received(resp.Proto + " " + resp.Status)
		for _, k := range sortedHeaderKeys(resp.Header) {
			for _, v := range resp.Header[k] {
				tr.Received(k + ": " + v)
			}
		}
	}
	// The body is read to its end either way, so that the server closes
	// first; it is kept only to be matched.
	var body []byte
	var n int64
	if t.BodyMatch != nil {
		buf := bytes.NewBuffer(make([]byte, 0, min(max(resp.ContentLength, 512), maxBody)))
		n, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
		body = buf.Bytes()
		if err != nil {
			return nil, nil, stageError(ReasonProtocol, "body", err)
		}
	} else {
		n, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	}
	if tr != nil {
		tr.Printf("body: %d bytes", n)
	}
	// The body reads from the connection's pooled reader: never after the
	// hang-up (a body beyond maxBody is not drained either).
	resp.Body = http.NoBody
	c.hangUp()
	return resp, body, nil
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirectTarget is where a redirect from prev to next connects: the same
// address when the host name stays, else the new name, resolved by the
// dialer.
func redirectTarget(prev Target, next *url.URL) Target {
	t := prev
	t.URL = next
	t.TLS = next.Scheme == "https"
	t.Port = urlPort(next)
	if h := next.Hostname(); !strings.EqualFold(h, prev.URL.Hostname()) {
		t.Host = h
		t.ServerName = h
	}
	return t
}

// urlPort is u's port, or its scheme's.
func urlPort(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

func sortedHeaderKeys(h http.Header) []string {
	return slices.Sorted(maps.Keys(h))
}

var _ Prober = (*HTTP)(nil)

package probe

import (
	"crypto/tls"
	"fmt"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/runbook"
)

// webTarget points an HTTP check at srv.
func webTarget(t *testing.T, srv *httptest.Server, path string) Target {
	t.Helper()
	u, err := url.Parse(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	tg := local("http", port)
	tg.TLS = u.Scheme == "https"
	tg.URL = u
	return tg
}

func TestHTTP(t *testing.T) {
	s := testSettings(t)
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Connection") != "close" || r.Header.Get("User-Agent") != userAgent {
			t.Errorf("request headers %v", r.Header)
		}
		fmt.Fprint(w, "<title>ACME shop</title>")
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "broken", 500) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusFound) })
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusMovedPermanently) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		u := "http://localhost:" + r.Host[strings.LastIndex(r.Host, ":")+1:] + "/"
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		name      string
		path      string
		redirects int
		match     string
		want      Reason
	}{
		{name: "200", path: "/"},
		{name: "body matches", path: "/", match: "<title>ACME"},
		{name: "body does not match", path: "/", match: "<title>Other", want: ReasonBodyMismatch},
		{name: "500", path: "/error", want: ReasonHTTPStatus},
		{name: "404", path: "/missing", want: ReasonHTTPStatus},
		{name: "a service check takes a redirect as an answer", path: "/moved"},
		{name: "the url check follows redirects", path: "/a", redirects: 5, match: "ACME"},
		{name: "redirects are bounded", path: "/loop", redirects: 5, want: ReasonProtocol},
		{name: "a redirect to another name", path: "/elsewhere", redirects: 1, match: "ACME"},
		{name: "one redirect too many", path: "/a", redirects: 1, want: ReasonProtocol},
		{name: "slow page", path: "/slow", want: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := webTarget(t, srv, tc.path)
			tg.MaxRedirects = tc.redirects
			if tc.match != "" {
				tg.BodyMatch = regexp.MustCompile(tc.match)
			}
			probeOnce(t, s, runbook.HTTP, tg, 500*time.Millisecond, tc.want)
		})
	}
	if hits.Load() == 0 {
		t.Error("the server saw no request")
	}
}

func TestHTTPS(t *testing.T) {
	p := newPKI(t)
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "panel") })
	tlsServer := func(t *testing.T, cert tls.Certificate) *httptest.Server {
		srv := httptest.NewUnstartedServer(handler)
		srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the failed handshakes are the point
		srv.TLS = serverTLS(cert)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	withCA := testSettings(t, "--probe.tls-ca-file="+p.caFile)
	systemOnly := testSettings(t)
	for _, tc := range []struct {
		name       string
		cert       tls.Certificate
		s          *settings
		serverName string
		insecure   bool
		want       Reason
	}{
		{name: "verified", cert: p.leaf, s: withCA},
		{name: "unknown CA", cert: p.leaf, s: systemOnly, want: ReasonTLS},
		{name: "wrong name", cert: p.leaf, s: withCA, serverName: "www.example.com", want: ReasonTLS},
		{name: "expired", cert: p.expired, s: withCA, want: ReasonTLS},
		{name: "self-signed panel refused", cert: p.selfSign, s: withCA, want: ReasonTLS},
		{name: "self-signed panel accepted where the inventory says so", cert: p.selfSign, s: withCA, insecure: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := webTarget(t, tlsServer(t, tc.cert), "/")
			tg.InsecureSkipVerify = tc.insecure
			if tc.serverName != "" {
				tg.ServerName = tc.serverName
			}
			res := probeOnce(t, tc.s, runbook.HTTP, tg, 2*time.Second, tc.want)
			if res.TLSExpiry.IsZero() {
				t.Error("no certificate expiry")
			}
		})
	}
}

// TestHTTPBodyBeyondTheLimit: a page larger than maxBody is matched on its
// first maxBody bytes, and nothing reads the connection after the probe.
func TestHTTPBodyBeyondTheLimit(t *testing.T) {
	big := strings.Repeat("x", maxBody+100<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<title>big</title>"+big)
	}))
	defer srv.Close()
	s := testSettings(t)
	for _, match := range []string{"", "<title>big"} {
		tg := webTarget(t, srv, "/")
		if match != "" {
			tg.BodyMatch = regexp.MustCompile(match)
		}
		probeOnce(t, s, runbook.HTTP, tg, 3*time.Second, "")
	}
}

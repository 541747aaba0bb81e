package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/inventory"
	"github.com/mamori-ops/mamori/runbook"
)

// BenchmarkProbers runs each prober against in-process servers (no root,
// no daemons): the cost of the dialogues themselves.
//
//	go test -run '^$' -bench Probers -benchmem ./exporter/probe
func BenchmarkProbers(b *testing.B) {
	p := newPKI(b)
	s := testSettings(b, "--probe.tls-ca-file="+p.caFile)
	for _, bc := range []struct {
		name   string
		proto  runbook.Protocol
		tls    bool
		server func(testing.TB, net.Conn)
	}{
		{"smtp", runbook.SMTP, false, scripted(send("220 ready\r\n"), expect("EHLO"), send(smtpEHLO), expect("QUIT"), send("221 bye\r\n"), hangUp)},
		{"smtps", runbook.SMTP, true, scripted(startTLS(serverTLS(p.leaf)), send("220 ready\r\n"), expect("EHLO"), send(smtpEHLO), expect("QUIT"), send("221 bye\r\n"), hangUp)},
		{"ftp", runbook.FTP, false, scripted(send("220 ready\r\n"), expect("QUIT"), send("221 bye\r\n"), hangUp)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			port := serve(b, bc.server)
			tg := local(bc.name, port)
			tg.TLS = bc.tls
			r := &Runner{s: s, probers: newProbers(s)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if res := r.run(ctx, tg, bc.proto, nil); !res.Success {
					b.Fatalf("%s: %v", res.Reason, res.Err)
				}
				cancel()
			}
		})
	}
}

// BenchmarkRealDaemons runs /probe requests for one check at a time against
// the real daemons (MAMORI_INTEGRATION=1, root): the cost per probe,
// request handling included.
//
//	MAMORI_INTEGRATION=1 go test -run '^$' -bench RealDaemons -benchmem ./exporter/probe
func BenchmarkRealDaemons(b *testing.B) {
	if os.Getenv("MAMORI_INTEGRATION") != "1" || os.Geteuid() != 0 {
		b.Skip("MAMORI_INTEGRATION=1 and root")
	}
	inv, err := inventory.LoadFile("testdata/inventory-daemons.yml")
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(testConfig(b, "--probe.tls-ca-file="+testCA), func() *inventory.Inventory { return inv }, NewMetrics(nil), nil)
	host, _ := inv.Host("localhost")
	ids := []string{"all"}
	for _, c := range host.CheckList() {
		if c.Kind == runbook.Probe {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		query := "&check=" + id
		if id == "all" {
			query = ""
		}
		b.Run(id, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, "/probe?target=localhost"+query, nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

type nopProber struct{}

func (nopProber) Probe(context.Context, Target, *Transcript) Result { return Result{Success: true} }

// BenchmarkHandlerOverhead is the cost of a /probe request around a probe
// that costs nothing: lookup, plan, metrics, the answer.
func BenchmarkHandlerOverhead(b *testing.B) {
	inv := parseInventory(b, strings.NewReplacer("SMTP_PORT", "25", "SSH_PORT", "22", "FTP_PORT", "21").Replace(handlerInventory))
	h := NewHandler(testConfig(b), func() *inventory.Inventory { return inv }, NewMetrics(nil), nil).(*handler)
	for p := range h.runner.probers {
		h.runner.probers[p] = nopProber{}
	}
	for _, q := range []string{"check=smtp", ""} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, "/probe?target=web1.acme.example&"+q, nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			}
		})
	}
}

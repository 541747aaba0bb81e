package remediator

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestProfDry(t *testing.T) {
	e := newEnv(t, envOptions{config: map[string]string{"dry_run": "dry_run: true", "workers": "workers: 8"}})
	n := 3000
	var wg sync.WaitGroup
	jobs := make(chan int)
	lat := make([]time.Duration, n)
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				b := mustJSON(t, alert("firing", fmt.Sprintf("%x", i), time.Now(), labelsFor("http", "service", "httpd")))
				st := time.Now()
				req, _ := http.NewRequest("POST", e.url+WebhookPath, bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				lat[i] = time.Since(st)
			}
		})
	}
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 2 * time.Millisecond)))
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var max time.Duration
	for _, l := range lat { if l > max { max = l } }
	t.Logf("posted %d in %s; max %s; running %d", n, time.Since(start), max, e.app.sched.Running())
}

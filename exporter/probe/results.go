package probe

import (
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"
)

// The answer to a /probe request is built per request, in the registry's
// check order: as the text exposition format directly (what Prometheus asks
// for), or as metric families for the encoder of any other negotiated
// format. A prometheus.Registry with a collector would produce the same
// families through goroutines and channels, and the encoder would validate
// every name again, for every request: about a tenth of an HTTP probe's
// CPU, measured.

// family is one metric name of the answer.
type family struct{ name, help string }

var (
	famSuccess  = family{"mamori_probe_success", "1 when the check's dialogue succeeded."}
	famDuration = family{"mamori_probe_duration_seconds", "Time the check's dialogue took."}
	famFailure  = family{"mamori_probe_failure", "1 for the reason the check failed with, 0 for the other reasons."}
	famExpiry   = family{"mamori_tls_cert_expiry_timestamp_seconds",
		"Earliest NotAfter of the certificates the server presented, when a TLS handshake got that far."}
	famLoss = family{"mamori_probe_icmp_packet_loss_ratio", "Share of the ping check's echo requests that got no reply."}
	famRTT  = family{"mamori_probe_icmp_rtt_seconds", "Average round-trip time of the ping check's echo replies."}
)

// gather returns the metric families of a request's probes.
func gather(probes []Probe) []*dto.MetricFamily {
	gauge := dto.MetricType_GAUGE
	mk := func(f family) *dto.MetricFamily {
		return &dto.MetricFamily{Name: ptr(f.name), Help: ptr(f.help), Type: &gauge}
	}
	success, duration, failure := mk(famSuccess), mk(famDuration), mk(famFailure)
	expiry, loss, rtt := mk(famExpiry), mk(famLoss), mk(famRTT)
	reasons := Reasons()
	reasonLabels := make([]*dto.LabelPair, len(reasons))
	for i, r := range reasons {
		reasonLabels[i] = &dto.LabelPair{Name: ptr("reason"), Value: ptr(string(r))}
	}
	for _, p := range probes {
		res := p.Result
		labels := []*dto.LabelPair{
			{Name: ptr("check"), Value: ptr(p.Target.Check)},
			{Name: ptr("port"), Value: ptr(portLabel(p.Target))},
		}
		success.Metric = append(success.Metric, sample(labels, boolValue(res.Success)))
		duration.Metric = append(duration.Metric, sample(labels, res.Duration.Seconds()))
		for i, r := range reasons {
			failure.Metric = append(failure.Metric, sample(append(labels[:2:2], reasonLabels[i]),
				boolValue(!res.Success && res.Reason == r)))
		}
		if !res.TLSExpiry.IsZero() {
			expiry.Metric = append(expiry.Metric, sample(labels, float64(res.TLSExpiry.Unix())))
		}
		if s := res.Ping; s != nil {
			loss.Metric = append(loss.Metric, sample(labels, s.Loss()))
			if s.Received > 0 {
				rtt.Metric = append(rtt.Metric, sample(labels, s.RTT.Seconds()))
			}
		}
	}
	var out []*dto.MetricFamily
	for _, f := range []*dto.MetricFamily{success, duration, failure, expiry, loss, rtt} {
		if len(f.Metric) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// appendText appends the probes' metrics in the text exposition format
// (version 0.0.4), byte for byte what expfmt writes for gather's families.
func appendText(b []byte, probes []Probe) []byte {
	reasons := Reasons()
	head := func(f family) {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.help...)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, " gauge\n"...)
	}
	line := func(f family, p Probe, reason Reason, v float64) {
		b = append(b, f.name...)
		b = append(b, `{check="`...)
		b = appendLabelValue(b, p.Target.Check)
		b = append(b, `",port="`...)
		if p.Target.Port != 0 {
			b = strconv.AppendInt(b, int64(p.Target.Port), 10)
		}
		if reason != "" {
			b = append(b, `",reason="`...)
			b = appendLabelValue(b, string(reason))
		}
		b = append(b, `"} `...)
		b = appendValue(b, v)
		b = append(b, '\n')
	}
	each := func(f family, value func(Probe) (float64, bool)) {
		started := false
		for _, p := range probes {
			v, ok := value(p)
			if !ok {
				continue
			}
			if !started {
				head(f)
				started = true
			}
			line(f, p, "", v)
		}
	}
	each(famSuccess, func(p Probe) (float64, bool) { return boolValue(p.Result.Success), true })
	each(famDuration, func(p Probe) (float64, bool) { return p.Result.Duration.Seconds(), true })
	if len(probes) > 0 {
		head(famFailure)
		for _, p := range probes {
			for _, r := range reasons {
				line(famFailure, p, r, boolValue(!p.Result.Success && p.Result.Reason == r))
			}
		}
	}
	each(famExpiry, func(p Probe) (float64, bool) {
		return float64(p.Result.TLSExpiry.Unix()), !p.Result.TLSExpiry.IsZero()
	})
	each(famLoss, func(p Probe) (float64, bool) {
		if p.Result.Ping == nil {
			return 0, false
		}
		return p.Result.Ping.Loss(), true
	})
	each(famRTT, func(p Probe) (float64, bool) {
		if p.Result.Ping == nil || p.Result.Ping.Received == 0 {
			return 0, false
		}
		return p.Result.Ping.RTT.Seconds(), true
	})
	return b
}

// appendLabelValue escapes a label value as the text format requires.
func appendLabelValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendValue writes a sample value as expfmt does.
func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func sample(labels []*dto.LabelPair, v float64) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &v}}
}

func ptr[T any](v T) *T { return &v }

// portLabel is the port label: empty for ICMP.
func portLabel(t Target) string {
	if t.Port == 0 {
		return ""
	}
	return strconv.Itoa(t.Port)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

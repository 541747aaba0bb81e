package postfix

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// record encodes one queue file record as rec_put() does.
func record(typ byte, data string) []byte {
	b := []byte{typ}
	n := len(data)
	for {
		c := byte(n & 0x7f)
		if n >>= 7; n != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			break
		}
	}
	return append(b, data...)
}

// queueFile returns a queue file as cleanup(8) of Postfix 3.7 writes it for
// a local submission, with the given ID and arrival time.
func queueFile(id string, arrival time.Time) []byte {
	body := []string{
		"Received: by vm (Postfix, from userid 0)",
		"\tid " + id + "; " + arrival.UTC().Format(time.RFC1123Z),
		"Subject: test",
		"Message-Id: <" + arrival.UTC().Format("20060102150405") + "." + id + "@vm>",
		"Date: " + arrival.UTC().Format(time.RFC1123Z),
		"From: root <sender@ci.example.test>",
		"",
		"hello",
	}
	size := 0
	for _, l := range body {
		size += len(l) + 1
	}
	var b bytes.Buffer
	b.Write(record('C', fmt.Sprintf("%15d %15d %15d %15d %15d %15d", size, 273, 1, 0, size, 0)))
	b.Write(record('T', fmt.Sprintf("%d %d", arrival.Unix(), arrival.Nanosecond()/1000)))
	b.Write(record('A', fmt.Sprintf("create_time=%d", arrival.Unix())))
	b.Write(record('A', "rewrite_context=local"))
	b.Write(record('F', "root"))
	b.Write(record('S', "sender@ci.example.test"))
	b.Write(record('A', "dsn_orig_rcpt=rfc822;rcpt@example.com"))
	b.Write(record('O', "rcpt@example.com"))
	b.Write(record('R', "rcpt@example.com"))
	b.Write(record('M', ""))
	for _, l := range body {
		b.Write(record('N', l))
	}
	b.Write(record('X', ""))
	b.Write(record('E', ""))
	return b.Bytes()
}

// fixtureArrivals are the 'T' records of the committed queue files, which
// `postqueue -j` reported with the same seconds.
var fixtureArrivals = map[string]time.Time{
	"maildrop/CDFC6C4471":   time.UnixMicro(1795675570_843603),
	"incoming/94BC1C4792":   time.UnixMicro(1795675588_601880),
	"active/7C2A3C4493":     time.UnixMicro(1795675634_500986),
	"deferred/3/3AFF9C45B3": time.UnixMicro(1795675337_239627),
	"deferred/3/3980DC45B5": time.UnixMicro(1795675337_228052),
	"deferred/1/13019C46E6": time.UnixMicro(1795675421_856265),
	"hold/1FAE9C45AA":       time.UnixMicro(1795675570_843603),
}

func TestParseArrivalRealFiles(t *testing.T) {
	for rel, want := range fixtureArrivals {
		b, err := os.ReadFile(filepath.Join("testdata/spool", rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseArrival(b[:min(len(b), headSize)])
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if got != want.UnixMicro() {
			t.Errorf("%s: arrival %v, want %v", rel, time.UnixMicro(got).UTC(), want.UTC())
		}
	}
}

// TestQueueFileMatchesReal checks the generator the other tests and the
// benchmarks use against a real file: the same records, byte for byte, up
// to the sender.
func TestQueueFileMatchesReal(t *testing.T) {
	real, err := os.ReadFile("testdata/spool/deferred/3/3AFF9C45B3")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(record('C', fmt.Sprintf("%15d %15d %15d %15d %15d %15d", 251, 273, 1, 0, 251, 0)))
	b.Write(record('T', "1795675337 239627"))
	b.Write(record('A', "create_time=1795675337"))
	b.Write(record('A', "rewrite_context=local"))
	b.Write(record('F', "root"))
	b.Write(record('S', "sender@ci.example.test"))
	if !bytes.HasPrefix(real, b.Bytes()) {
		t.Errorf("generated records differ from the real file:\n%q\n%q", b.Bytes(), real[:b.Len()])
	}
	gen := queueFile("3AFF9C45B3", time.UnixMicro(1795675337_239627))
	if got, err := parseArrival(gen[:min(len(gen), headSize)]); err != nil || got != 1795675337_239627 {
		t.Errorf("generated file: %v %v", got, err)
	}
}

func TestParseArrival(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	long := strings.Repeat("x", 300) // a two-byte length: 0xac 0x02
	for _, tc := range []struct {
		name string
		in   []byte
		want int64
		err  error
	}{
		{"postdrop: T first", record('T', "1795675570 843603"), 1795675570_843603, nil},
		{"cleanup: C then T", cat(record('C', "   251    273"), record('T', "1795675337 239627")), 1795675337_239627, nil},
		{"old: seconds only", cat(record('C', "251"), record('T', "1000000000")), 1000000000_000000, nil},
		{"long record before T", cat(record('N', long), record('T', "5 6")), 5_000006, nil},
		{"zero microseconds", record('T', "7 0"), 7_000000, nil},
		{"empty", nil, 0, errShort},
		{"truncated in length", []byte{'C', 0x80}, 0, errShort},
		{"truncated in data", record('C', "1234")[:4], 0, errShort},
		{"truncated in T", record('T', "1795675337 239627")[:8], 0, errShort},
		{"content before T", cat(record('C', "1"), record('M', ""), record('T', "5")), 0, errNoTime},
		{"end before T", record('E', ""), 0, errNoTime},
		{"length over 5 groups", []byte{'C', 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, errLength},
		{"length over 2^31", []byte{'C', 0xff, 0xff, 0xff, 0xff, 0x0f}, 0, errLength},
		{"empty T", record('T', ""), 0, errTimeData},
		{"letters in T", record('T', "17956x5337 1"), 0, errTimeData},
		{"two spaces", record('T', "5  6"), 0, errTimeData},
		{"trailing space", record('T', "5 "), 0, errTimeData},
		{"microseconds over 6 digits", record('T', "5 1234567"), 0, errTimeData},
		{"seconds over 12 digits", record('T', "1234567890123 0"), 0, errTimeData},
		{"negative", record('T', "-5 0"), 0, errTimeData},
	} {
		got, err := parseArrival(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestRecordLengths round-trips the length encoding across group edges.
func TestRecordLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384, 1 << 20} {
		b := record('N', strings.Repeat("a", n))
		got, rest, err := recordLength(b[1:])
		if err != nil || got != n || len(rest) != n {
			t.Errorf("length %d: got %d, rest %d, %v", n, got, len(rest), err)
		}
	}
}

// FuzzArrivalTime checks that no input makes the parser panic or read out of
// bounds, that what it accepts is a 'T' record's number, and that any
// arrival time behind any records is found again.
func FuzzArrivalTime(f *testing.F) {
	for rel := range fixtureArrivals {
		if b, err := os.ReadFile(filepath.Join("testdata/spool", rel)); err == nil {
			f.Add(b[:min(len(b), headSize)], int64(0), "")
		}
	}
	f.Add([]byte{'C', 0x80}, int64(1795675337_239627), strings.Repeat("x", 200))
	f.Add([]byte("T\x011"), int64(5), "")
	f.Fuzz(func(t *testing.T, data []byte, usec int64, prefix string) {
		if got, err := parseArrival(data); err == nil {
			if got < 0 || got >= 1e18 {
				t.Fatalf("arrival %d out of range", got)
			}
			if !bytes.Contains(data, []byte(fmt.Sprint(got/1e6))) {
				t.Fatalf("arrival %d is not in the input", got)
			}
		}
		// Any records before 'T' but content or end are skipped.
		if usec < 0 || usec >= 1e18 || strings.ContainsAny(prefix[:min(1, len(prefix))], "MET") {
			return
		}
		var in []byte
		if prefix != "" {
			in = record(prefix[0], prefix[1:])
		}
		in = append(in, record('T', fmt.Sprintf("%d %d", usec/1e6, usec%1e6))...)
		if got, err := parseArrival(in); err != nil || got != usec {
			t.Fatalf("%q: got %d, %v; want %d", in, got, err, usec)
		}
	})
}

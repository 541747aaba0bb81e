package remediator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/mamori-ops/mamori/runbook"
)

// collect runs the step's diagnostic commands and keeps their output for the
// emails. A command that fails is recorded and the others still run.
func (l *ladder) collect(ctx context.Context, i int, names []string) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	ran, rendered := 0, false
	for _, name := range names {
		unit := ""
		if l.hc.Service != "" {
			unit = l.host.Unit(l.hc.Service)
		}
		cmd, err := l.render(name, unit)
		if err != nil {
			s.note("%s: %v", name, err)
			continue
		}
		_, err = l.runSSH(ctx, s, cmd)
		switch {
		case errors.Is(err, errDryRun):
			rendered = true
		case stopping(err):
			return "", err
		case hostKeyErr(err):
			s.note("%v", err)
			return l.end(ctx, s, outHostKey)
		case err != nil:
			s.note("%s: %v", name, err)
			if l.client == nil {
				// No connection: the other commands would fail alike.
				return l.end(ctx, s, outFailed)
			}
		default:
			ran++
		}
	}
	switch {
	case rendered:
		return l.end(ctx, s, outRendered)
	case ran == 0:
		return l.end(ctx, s, outFailed)
	}
	return l.end(ctx, s, outDone)
}

// queuedMessage is one line of `postqueue -j`.
type queuedMessage struct {
	Queue  string `json:"queue_name"`
	ID     string `json:"queue_id"`
	Sender string `json:"sender"`
}

// Count is a name and how often it appears.
type Count struct {
	Name  string
	Count int
}

// QueueAnalysis is what analyse_queue found.
type QueueAnalysis struct {
	Messages   int
	ByQueue    []Count
	TopSenders []Count
	// SASLUsers are the authenticated users of a sample of the top
	// senders' messages.
	SASLUsers []Count
	Sampled   int
	// Dominant is the SASL user behind most of the queue, when one is: the
	// sign of a stolen password.
	Dominant string
}

// queueIDRE is what a Postfix queue ID looks like (short and long form).
var queueIDRE = regexp.MustCompile(`^[0-9A-Za-z]{5,20}$`)

// accountRE is a mail account that may go into the reset command.
var accountRE = regexp.MustCompile(`^[A-Za-z0-9._%+-]{1,64}(@[A-Za-z0-9.-]{1,253})?$`)

// Dominance: the top sender holds at least this share of a queue of at
// least dominantMin messages, and one SASL user sent most of its sample.
const (
	dominantShare = 0.5
	dominantMin   = 20
	sampleSize    = 10
)

// parseQueue reads `postqueue -j`, one JSON object per line.
func parseQueue(out string) []queuedMessage {
	var msgs []queuedMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m queuedMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func counted(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// saslUser reads the sasl_username attribute from `postcat -e` output.
func saslUser(postcat string) string {
	sc := bufio.NewScanner(strings.NewReader(postcat))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "named_attribute: sasl_username="); ok {
			return v
		}
	}
	return ""
}

// analyse computes the analysis from the queue listing and the postcat
// outputs of the sample.
func analyse(queue string, postcats []string) QueueAnalysis {
	msgs := parseQueue(queue)
	a := QueueAnalysis{Messages: len(msgs)}
	byQueue, bySender := map[string]int{}, map[string]int{}
	for _, m := range msgs {
		byQueue[m.Queue]++
		s := m.Sender
		if s == "" {
			s = "<>"
		}
		bySender[s]++
	}
	a.ByQueue, a.TopSenders = counted(byQueue), counted(bySender)
	if len(a.TopSenders) > 5 {
		a.TopSenders = a.TopSenders[:5]
	}
	users := map[string]int{}
	for _, p := range postcats {
		if u := saslUser(p); u != "" {
			users[u]++
		}
		a.Sampled++
	}
	a.SASLUsers = counted(users)
	if a.Messages >= dominantMin && len(a.TopSenders) > 0 &&
		float64(a.TopSenders[0].Count) >= dominantShare*float64(a.Messages) &&
		len(a.SASLUsers) > 0 && float64(a.SASLUsers[0].Count) > dominantShare*float64(a.Sampled) {
		a.Dominant = a.SASLUsers[0].Name
	}
	return a
}

// sampleIDs picks queue IDs of the top sender's messages for postcat.
func sampleIDs(queue string, sender string) []string {
	var ids []string
	for _, m := range parseQueue(queue) {
		if m.Sender == sender && queueIDRE.MatchString(m.ID) {
			ids = append(ids, m.ID)
			if len(ids) == sampleSize {
				break
			}
		}
	}
	return ids
}

// analyseQueue finds the senders and SASL users behind the mail queue from
// the collected `postqueue -j` and `postcat -e` of a sample.
func (l *ladder) analyseQueue(ctx context.Context, i int) (string, error) {
	s, err := l.begin(ctx, i, l.hc.Service, "")
	if err != nil {
		return "", err
	}
	queue := l.lastOutput("mailq")
	if l.dry {
		// The command as it would run, for a made-up queue ID.
		if cmd, err := l.renderFill("postcat", map[string]string{runbook.QueueIDPlaceholder: "QUEUEID"}); err == nil {
			_, _ = l.runSSH(ctx, s, cmd)
		}
		s.note("would read the sender and the SASL user of up to %d messages of the top sender", sampleSize)
		return l.end(ctx, s, outRendered)
	}
	a := analyse(queue, nil)
	if len(a.TopSenders) > 0 && a.Messages >= dominantMin {
		for _, id := range sampleIDs(queue, a.TopSenders[0].Name) {
			cmd, err := l.renderFill("postcat", map[string]string{runbook.QueueIDPlaceholder: id})
			if err != nil {
				s.note("%v", err)
				break
			}
			_, err = l.runSSH(ctx, s, cmd)
			if stopping(err) {
				return "", err
			}
			if err != nil {
				s.note("postcat: %v", err)
				break
			}
		}
	}
	l.history[i] = s.Step
	a = l.queueAnalysis()
	s.note("%s", a.summary())
	return l.end(ctx, s, outDone)
}

// queueAnalysis recomputes the analysis from the journal: a resumed ladder
// finds the same account.
func (l *ladder) queueAnalysis() QueueAnalysis {
	var postcats []string
	for _, h := range l.history {
		for _, c := range h.Commands {
			if c.Name == "postcat" && c.ExitCode != nil && *c.ExitCode == 0 {
				postcats = append(postcats, c.Output)
			}
		}
	}
	return analyse(l.lastOutput("mailq"), postcats)
}

func (a QueueAnalysis) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d message(s) queued", a.Messages)
	for i, c := range a.TopSenders {
		if i == 0 {
			b.WriteString("; top senders: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d)", c.Name, c.Count)
	}
	for i, c := range a.SASLUsers {
		if i == 0 {
			fmt.Fprintf(&b, "; SASL users in a sample of %d: ", a.Sampled)
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d)", c.Name, c.Count)
	}
	if a.Dominant != "" {
		fmt.Fprintf(&b, "; %s dominates the queue", a.Dominant)
	}
	return b.String()
}

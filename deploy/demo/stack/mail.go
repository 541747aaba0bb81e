package stack

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Mail is one message smtp-sink received, decoded.
type Mail struct {
	File       string
	Received   time.Time // the file's modification time
	To         string    // envelope recipient (X-Rcpt-Args)
	Subject    string
	Text       string // the text parts, decoded
	RawHeaders mail.Header
}

// Mails reads every message in dir (smtp-sink -d), oldest first.
func Mails(dir string) ([]Mail, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Mail
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		m, err := parseMail(raw)
		if err != nil {
			// smtp-sink may still be writing it.
			continue
		}
		m.File, m.Received = p, info.ModTime()
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.Before(out[j].Received) })
	return out, nil
}

func parseMail(raw []byte) (*Mail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	m := &Mail{RawHeaders: msg.Header, Subject: subject,
		To: strings.Trim(strings.Fields(msg.Header.Get("X-Rcpt-Args") + " ")[0], "<>")}
	text, err := textOf(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return nil, err
	}
	m.Text = text
	return m, nil
}

func textOf(contentType, encoding string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		var parts []string
		for {
			p, err := r.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", err
			}
			t, err := textOf(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			if err != nil {
				return "", err
			}
			if t != "" {
				parts = append(parts, t)
			}
		}
		return strings.Join(parts, "\n"), nil
	}
	if !strings.HasPrefix(mt, "text/plain") {
		return "", nil
	}
	switch strings.ToLower(encoding) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("body: %w", err)
	}
	return string(b), nil
}

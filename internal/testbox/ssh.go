package testbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ClientConfig is an SSH client configuration for root on the box: the
// box's key, and its host key pinned through KnownHosts (the box offers
// only ed25519, so no algorithm mismatch with known_hosts can arise).
func (b *Box) ClientConfig() (*ssh.ClientConfig, error) {
	pem, err := os.ReadFile(b.KeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, err
	}
	hostKey, err := knownhosts.New(b.KnownHosts)
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           5 * time.Second,
	}, nil
}

// Dial opens an SSH connection to the box as root. The TCP connect and the
// handshake are bounded by ctx and by 5 s each.
func (b *Box) Dial(ctx context.Context) (*ssh.Client, error) {
	cfg, err := b.ClientConfig()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", b.sshAddr())
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	c, chans, reqs, err := ssh.NewClientConn(conn, b.sshAddr(), cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// Run runs a shell command on the box over SSH, as the remediator does, and
// returns its combined output and exit status; err is for what is not the
// command's own failure (connection, host key, timeout). When ctx has a
// deadline, the command runs under timeout(1) on the box, so that it ends
// there too (a signal sent over SSH does not stop a root command).
func (b *Box) Run(ctx context.Context, command string) (out []byte, status int, err error) {
	c, err := b.Dial(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("box %s: ssh: %w", b.Name, err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return nil, -1, fmt.Errorf("box %s: ssh session: %w", b.Name, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		secs := int(math.Ceil(time.Until(dl).Seconds()))
		command = fmt.Sprintf("timeout --kill-after=2 %d sh -c %s", max(secs, 1), shellQuote(command))
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	out, err = s.CombinedOutput(command)
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return out, 0, nil
	case errors.As(err, &exit) && exit.Signal() == "":
		return out, exit.ExitStatus(), nil
	case ctx.Err() != nil:
		return out, -1, fmt.Errorf("box %s: ssh %q: %w", b.Name, command, ctx.Err())
	default:
		return out, -1, fmt.Errorf("box %s: ssh %q: %w", b.Name, command, err)
	}
}

package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrHostKeyChanged: the host presented a key other than the one pinned in
// known_hosts. The ladder stops; a person must look (a reinstalled server,
// or someone in the middle).
var ErrHostKeyChanged = errors.New("host key changed")

// ErrHostKeyUnknown: known_hosts has no key for the host. The remediator
// never trusts a key on first use.
var ErrHostKeyUnknown = errors.New("host key unknown")

// Endpoint is where and as whom to log in, from the inventory.
type Endpoint struct {
	Address        string
	Port           int
	User           string
	KeyFile        string
	KnownHostsFile string
	// Agent authenticates with the agent at the Dialer's AgentSocket.
	Agent bool
}

// Addr is host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Address, strconv.Itoa(e.Port)) }

// Dialer opens SSH connections with the remediator's limits.
type Dialer struct {
	// ConnectTimeout bounds the TCP connect; HandshakeTimeout the SSH
	// handshake and authentication after it (x/crypto's own Timeout covers
	// only the connect).
	ConnectTimeout   time.Duration
	HandshakeTimeout time.Duration
	// KillAfter is how long timeout(1) waits after its TERM before KILL;
	// commands are also given up here after Timeout+KillAfter+Grace.
	KillAfter time.Duration
	Grace     time.Duration
	// OutputLimit bounds the output kept of one command.
	OutputLimit int
	// AgentSocket is $SSH_AUTH_SOCK, read once by the caller.
	AgentSocket string
}

func (d *Dialer) defaults() {
	if d.ConnectTimeout <= 0 {
		d.ConnectTimeout = 10 * time.Second
	}
	if d.HandshakeTimeout <= 0 {
		d.HandshakeTimeout = 10 * time.Second
	}
	if d.KillAfter <= 0 {
		d.KillAfter = 5 * time.Second
	}
	if d.Grace <= 0 {
		d.Grace = 5 * time.Second
	}
	if d.OutputLimit <= 0 {
		d.OutputLimit = 64 << 10
	}
}

// Client is one SSH connection, reused for every command of a ladder.
type Client struct {
	d      Dialer
	ep     Endpoint
	mu     sync.Mutex
	conn   *ssh.Client
	broken bool
}

// authMethods builds key or agent authentication.
func (d *Dialer) authMethods(ep Endpoint) ([]ssh.AuthMethod, func(), error) {
	switch {
	case ep.Agent:
		if d.AgentSocket == "" {
			return nil, nil, errors.New("ssh agent requested but SSH_AUTH_SOCK is not set")
		}
		c, err := net.DialTimeout("unix", d.AgentSocket, d.ConnectTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh agent: %w", err)
		}
		return []ssh.AuthMethod{ssh.PublicKeysCallback(agent.NewClient(c).Signers)}, func() { c.Close() }, nil
	case ep.KeyFile != "":
		pem, err := os.ReadFile(ep.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			// The error names no key material.
			return nil, nil, fmt.Errorf("ssh key %s: %w", ep.KeyFile, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, func() {}, nil
	}
	return nil, nil, errors.New("no ssh key_file and no agent for this host")
}

// Dial connects and logs in, verifying the host key against known_hosts.
func (d Dialer) Dial(ctx context.Context, ep Endpoint) (*Client, error) {
	d.defaults()
	if ep.KnownHostsFile == "" {
		return nil, fmt.Errorf("%w: no known_hosts file for %s", ErrHostKeyUnknown, ep.Addr())
	}
	kh, err := knownhosts.NewDB(ep.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	auth, closeAuth, err := d.authMethods(ep)
	if err != nil {
		return nil, err
	}
	defer closeAuth()
	addr := ep.Addr()
	cfg := &ssh.ClientConfig{
		User:              ep.User,
		Auth:              auth,
		HostKeyCallback:   kh.HostKeyCallback(),
		HostKeyAlgorithms: kh.HostKeyAlgorithms(addr),
		Timeout:           d.ConnectTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh connect %s: %w", addr, err)
	}
	// The handshake and authentication are bounded by a deadline on the
	// socket, and by ctx.
	_ = nc.SetDeadline(time.Now().Add(d.HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	stop()
	if err != nil {
		nc.Close()
		switch {
		case knownhosts.IsHostKeyChanged(err):
			return nil, fmt.Errorf("%w: %s presented a key that known_hosts does not pin", ErrHostKeyChanged, addr)
		case knownhosts.IsHostUnknown(err):
			return nil, fmt.Errorf("%w: %s is not in %s", ErrHostKeyUnknown, addr, ep.KnownHostsFile)
		}
		return nil, fmt.Errorf("ssh handshake %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &Client{d: d, ep: ep, conn: ssh.NewClient(c, chans, reqs)}, nil
}

// Close ends the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = true
	return c.conn.Close()
}

// Broken reports whether the connection was given up (a command overran,
// the host went away); the ladder dials again.
func (c *Client) Broken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Line is the shell line Run sends for cmd.
func (c *Client) Line(cmd Command) string { return cmd.Line(c.d.KillAfter) }

// Run runs one command and waits for it, at most Timeout+KillAfter+Grace.
// A non-zero exit status is a Result, not an error; an error means the
// command's outcome is unknown.
func (c *Client) Run(ctx context.Context, cmd Command) (Result, error) {
	start := time.Now()
	res := Result{ExitCode: -1}
	limit := cmd.Timeout + c.d.KillAfter + c.d.Grace
	if cmd.Timeout <= 0 {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	type opened struct {
		s   *ssh.Session
		err error
	}
	// Opening a channel on a dead connection blocks: bound it by ctx.
	oc := make(chan opened, 1)
	go func() {
		s, err := c.conn.NewSession()
		oc <- opened{s, err}
	}()
	var sess *ssh.Session
	select {
	case o := <-oc:
		if o.err != nil {
			c.giveUp()
			return res, fmt.Errorf("ssh session: %w", o.err)
		}
		sess = o.s
	case <-ctx.Done():
		c.giveUp()
		return res, fmt.Errorf("ssh session: %w", ctx.Err())
	}
	defer sess.Close()

	out := &limitBuffer{limit: c.d.OutputLimit}
	sess.Stdout, sess.Stderr = out, out
	if cmd.Stdin != nil {
		sess.Stdin = bytes.NewReader(cmd.Stdin)
	}
	if err := sess.Start(c.Line(cmd)); err != nil {
		return res, fmt.Errorf("ssh start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// timeout(1) should have ended it already: the host or the network
		// is stuck. The connection is of no further use.
		_ = sess.Signal(ssh.SIGKILL)
		c.giveUp()
		err = fmt.Errorf("command did not end within %s: %w", limit, ctx.Err())
	}
	res.Output, res.Truncated = out.result()
	res.Duration = time.Since(start)
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
	case errors.As(err, &exitErr) && exitErr.Signal() == "":
		res.ExitCode = exitErr.ExitStatus()
	case errors.As(err, &exitErr):
		// Killed by a signal: no exit status.
		return res, fmt.Errorf("ssh %s: killed by SIG%s", cmd.Name, exitErr.Signal())
	default:
		return res, fmt.Errorf("ssh %s: %w", cmd.Name, err)
	}
	return res, nil
}

func (c *Client) giveUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = true
	_ = c.conn.Close()
}

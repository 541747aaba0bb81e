package quietnet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoServer accepts connections on l and echoes one line back on each,
// prefixed with the address the connection came from.
func echoServer(t *testing.T, l net.Listener) {
	t.Helper()
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				io.WriteString(c, c.RemoteAddr().String()+" "+line)
			}()
		}
	}()
}

func listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		if network == "tcp6" {
			t.Skipf("no IPv6 loopback here: %v", err)
		}
		t.Fatal(err)
	}
	return l
}

func TestDialTalks(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			l := listen(t, tc.network, tc.addr)
			echoServer(t, l)
			ap := l.Addr().(*net.TCPAddr).AddrPort()
			var d Dialer
			c, err := d.Dial(ap, time.Now().Add(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.RemoteAddr().String(); got != ap.String() {
				t.Errorf("RemoteAddr %s, want %s", got, ap)
			}
			if _, err := io.WriteString(c, "hello\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			// The server saw the address LocalAddr reports.
			if want := c.LocalAddr().String() + " hello\n"; line != want {
				t.Errorf("server answered %q, want %q", line, want)
			}
		})
	}
}

func TestDialRefusesAZone(t *testing.T) {
	var d Dialer
	if _, err := d.Dial(netip.MustParseAddrPort("[fe80::1%lo]:22"), time.Time{}); err == nil || !strings.Contains(err.Error(), "without a zone") {
		t.Fatalf("dial to a zoned address: %v, want a refusal", err)
	}
}

func TestDialFromSource(t *testing.T) {
	l := listen(t, "tcp4", "127.0.0.1:0")
	echoServer(t, l)
	d := Dialer{Source: netip.MustParseAddr("127.0.0.2")}
	c, err := d.Dial(l.Addr().(*net.TCPAddr).AddrPort(), time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "x\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(line[:len(line)-len(" x\n")]); host != "127.0.0.2" {
		t.Errorf("the server saw %q, want a connection from 127.0.0.2", line)
	}
}

func TestDialRefused(t *testing.T) {
	l := listen(t, "tcp4", "127.0.0.1:0")
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	var d Dialer
	_, err := d.Dial(ap, time.Now().Add(5*time.Second))
	var op *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("dial to a closed port: %v (%T), want a dial *net.OpError with ECONNREFUSED", err, err)
	}
}

// TestDialDeadline connects to a listener whose accept queue is full, which
// drops the SYN: the connect must end at the deadline.
func TestDialDeadline(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	var d Dialer
	// With a backlog of 0 the queue holds one connection; fill it.
	for i := 0; i < 2; i++ {
		c, err := d.Dial(ap, time.Now().Add(200*time.Millisecond))
		if err != nil {
			break
		}
		defer c.Close()
	}
	start := time.Now()
	_, err = d.Dial(ap, time.Now().Add(300*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dial to a full queue: %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the dial took %s past a 300ms deadline", took)
	}
}

// TestClose checks that Close ends the connection at once (the server
// reads EOF, a blocked read returns), refuses a second Close, and that the
// descriptor is released soon after.
func TestClose(t *testing.T) {
	l := listen(t, "tcp4", "127.0.0.1:0")
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	var d Dialer
	c, err := d.Dial(l.Addr().(*net.TCPAddr).AddrPort(), time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	defer server.Close()
	var fd uintptr
	c.(*fileConn).rc.Control(func(f uintptr) { fd = f })
	path := "/proc/self/fd/" + strconv.Itoa(int(fd))
	socket, err := os.Readlink(path) // socket:[inode], this socket's alone
	if err != nil {
		t.Fatal(err)
	}

	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the read block
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("a read blocked across Close returned %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a blocked read")
	}
	server.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := server.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the server read %d bytes, %v after Close, want EOF", n, err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
	// The reaper closes the descriptor within reapDelay; poll a bounded
	// number of times (the number may be reused: compare the socket).
	for i := 0; ; i++ {
		if now, err := os.Readlink(path); err != nil || now != socket {
			break
		}
		if i == 100 {
			t.Fatalf("descriptor %d still open 1s after Close", fd)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListenerServesHTTP(t *testing.T) {
	l := listen(t, "tcp4", "127.0.0.1:0")
	wrapped := make(chan bool, 10)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "quiet "+r.URL.Path)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			_, ok := c.(*tcpConn)
			wrapped <- ok
			return ctx
		},
	}
	go srv.Serve(Listener(l))
	t.Cleanup(func() { srv.Close() })
	for i := 0; i < 3; i++ { // keep-alive: later requests reuse the wrapped connection
		resp, err := http.Get("http://" + l.Addr().String() + "/p" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "quiet /p" + strconv.Itoa(i); string(b) != want {
			t.Fatalf("answer %q, want %q", b, want)
		}
	}
	if !<-wrapped {
		t.Error("the server's connection is not the raw one")
	}
}

// TestWrapKeepsCloseWrite: net/http half-closes before it closes on an
// error answer, through CloseWrite.
func TestWrapKeepsCloseWrite(t *testing.T) {
	l := listen(t, "tcp4", "127.0.0.1:0")
	echoServer(t, l)
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := Wrap(raw)
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("a wrapped TCP connection has no CloseWrite")
	}
	io.WriteString(c, "half\n")
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != c.LocalAddr().String()+" half\n" {
		t.Fatalf("after CloseWrite the server answered %q, %v", line, err)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Error("Wrap changed a connection that is not TCP")
	}
}

package postfix

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// asNobodyEnv carries, to a test binary re-executed as nobody, the spool to
// scan and the error expected.
const (
	asNobodySpool = "MAMORI_POSTFIX_TEST_SPOOL"
	asNobodyWant  = "MAMORI_POSTFIX_TEST_WANT"
)

// TestScanPermissionDenied: a queue directory the exporter may not read
// fails the scan and says what to do. Root reads anything, so as root the
// test binary runs itself again as nobody (setpriv) on a spool laid out
// like Postfix's: traversable parents, 0700 queue directories not owned by
// the scanning user.
func TestScanPermissionDenied(t *testing.T) {
	if spool := os.Getenv(asNobodySpool); spool != "" {
		checkDenied(t, spool, os.Getenv(asNobodyWant))
		return
	}
	ts := newTestSpool(t)
	ts.add("active/A1A1A1A1A1", time.Now())
	ts.add("deferred/D/D1D1D1D1D1", time.Now())
	for _, q := range []string{"maildrop", "incoming", "hold"} {
		if err := os.Mkdir(filepath.Join(ts.dir, q), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"active", "deferred/D"} {
		if err := os.Chmod(filepath.Join(ts.dir, q), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := "read postfix queue deferred: open " + ts.dir + "/deferred: permission denied" +
		" (the exporter needs read access to the spool: run as root or with CAP_DAC_READ_SEARCH)"
	if os.Geteuid() != 0 {
		if err := os.Chmod(filepath.Join(ts.dir, "deferred"), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(ts.dir, "deferred"), 0o700) })
		checkDenied(t, ts.dir, want)
		return
	}
	runAsNobody(t, "TestScanPermissionDenied", ts.dir, want)
}

// checkDenied scans spool twice (the second time with whatever the first
// left cached) and expects the error want.
func checkDenied(t *testing.T, spool, want string) {
	t.Helper()
	s := NewSpool(spool)
	for range 2 {
		_, err := s.Scan(time.Now())
		if err == nil || err.Error() != want {
			t.Fatalf("got error %v\nwant %s", err, want)
		}
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%v is not fs.ErrPermission", err)
		}
	}
}

// runAsNobody runs the test named test of this binary again as the user
// nobody without capabilities, to scan spool and expect the error want. The
// binary is copied where nobody may execute it; the parents of spool are
// opened to others, as /var/spool is.
func runAsNobody(t *testing.T, test, spool, want string) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testenv.Need(t, "running as root, and setpriv (util-linux) is missing to drop to nobody: root is never denied")
	}
	openToOthers(t, spool)
	bin := copyTestBinary(t)
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
		bin, "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = []string{"PATH=/usr/bin:/bin", asNobodySpool + "=" + spool, asNobodyWant + "=" + want}
	cmd.Dir = filepath.Dir(bin)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}

func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openToOthers(t, dir)
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "postfix.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// openToOthers makes dir and its parents up to the system's temporary
// directory (excluded) traversable by everyone.
func openToOthers(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

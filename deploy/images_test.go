package deploy

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mamori-ops/mamori/internal/testenv"
)

// TestImagesFromScratch builds both images as `make images` does, with
// podman and a storage of the test's own, and checks what is in them: the
// static binary, a CA bundle and, for the remediator, /tmp and the journal's
// directory owned by nobody; nothing else, no shell. Then it runs each
// image's entrypoint from the exported file system, chrooted, as nobody.
// That, not `podman run`, is the run: this machine's hybrid cgroup layout
// is one crun refuses, so no OCI runtime can start a container here.
func TestImagesFromScratch(t *testing.T) {
	testenv.RequireIntegration(t)
	if os.Geteuid() != 0 {
		testenv.Need(t, "root is needed to chroot into the images")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		testenv.Need(t, "podman is not installed (scripts/setup-test.sh installs it): %v", err)
	}
	bin := t.TempDir()
	for _, b := range []string{"exporter", "remediator"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, "mamori_"+b), "../"+b+"/cmd/mamori_"+b)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build mamori_%s: %v\n%s", b, err, out)
		}
	}
	store := t.TempDir()
	podman := []string{"podman", "--storage-driver=vfs", "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run")}
	build := exec.Command("../scripts/build-images.sh", append([]string{"test"}, podman...)...)
	build.Env = append(os.Environ(), "BIN_DIR="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-images.sh: %v\n%s", err, out)
	}
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(podman[0], append(podman[1:], args...)...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	for _, tc := range []struct {
		role    string
		port    string
		entries map[string]string // path: mode and owner, as tar lists them
	}{
		{"exporter", "9796/tcp", map[string]string{
			"bin/mamori_exporter":               "-rwxr-xr-x 0",
			"etc/ssl/certs/ca-certificates.crt": "-rw-r--r-- 0",
		}},
		{"remediator", "9797/tcp", map[string]string{
			"bin/mamori_remediator":             "-rwxr-xr-x 0",
			"etc/ssl/certs/ca-certificates.crt": "-rw-r--r-- 0",
			"tmp/":                              "dtrwxrwxrwx 0",
			"var/lib/mamori/":                   "drwx------ 65534",
		}},
	} {
		t.Run(tc.role, func(t *testing.T) {
			image := "mamori/" + tc.role + ":test"
			var cfg []struct {
				Config struct {
					User         string
					Entrypoint   []string
					ExposedPorts map[string]any
				}
			}
			if err := json.Unmarshal(run("image", "inspect", image), &cfg); err != nil || len(cfg) != 1 {
				t.Fatalf("image inspect: %v", err)
			}
			c := cfg[0].Config
			entry := "/bin/mamori_" + tc.role
			if c.User != "65534:65534" || !slices.Equal(c.Entrypoint, []string{entry}) || c.ExposedPorts[tc.port] == nil {
				t.Errorf("config: user %q, entrypoint %q, ports %v", c.User, c.Entrypoint, c.ExposedPorts)
			}

			id := strings.TrimSpace(string(run("create", image)))
			defer run("rm", id)
			root := t.TempDir()
			files := extract(t, bytes.NewReader(run("export", id)), root)
			for path, want := range tc.entries {
				if got, ok := files[path]; !ok || got != want {
					t.Errorf("%s: %q, want %q", path, got, want)
				}
			}
			for path := range files {
				if _, ok := tc.entries[path]; !ok && !strings.HasSuffix(path, "/") {
					t.Errorf("unexpected file %s in the image", path)
				}
			}
			out, err := exec.Command("chroot", "--userspec=65534:65534", root, entry, "--version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "mamori_"+tc.role) {
				t.Fatalf("%s --version in the image's file system as nobody: %v\n%s", entry, err, out)
			}
		})
	}
}

// extract unpacks an exported file system into dir and returns each
// entry's mode and owner uid ("drwx------ 65534"), keyed by path ("tmp/" for
// a directory).
func extract(t *testing.T, r io.Reader, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")
		dst := filepath.Join(dir, name)
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			files[name+"/"] = mode.String() + " " + strconv.Itoa(h.Uid)
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dst, mode.Perm()|mode&os.ModeSticky); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			files[name] = mode.String() + " " + strconv.Itoa(h.Uid)
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			files[name] = "type " + string(h.Typeflag)
		}
	}
}

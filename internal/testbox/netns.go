package testbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// The network: every box lives in a network namespace of its own, joined to
// the machine by a veth pair: 198.18.X.1/30 on the machine's side (mboxX),
// 198.18.X.2/30 on the box's (eth0), X from 1 to 254, distinct per box.
// 198.18.0.0/15 is never routed off the machine: a guard route (unreachable,
// metric 4000) catches whatever no box's link covers.
const (
	guardPrefix = "198.18.0.0/15"
	netnsPrefix = "mamori-box-"
	maxIndex    = 254
)

func boxAddrs(x int) (host, box string) {
	return fmt.Sprintf("198.18.%d.1", x), fmt.Sprintf("198.18.%d.2", x)
}

func vethName(x int) string { return fmt.Sprintf("mbox%d", x) }

// run runs a command and returns its output; a failure carries the output.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

var index198 = regexp.MustCompile(`\b198\.18\.(\d{1,3})\.\d{1,3}\b`)

// usedIndexes lists the X of every 198.18.X.Y in text (`ip addr`, `ip route`
// output).
func usedIndexes(text string) map[int]bool {
	used := map[int]bool{}
	for _, m := range index198.FindAllStringSubmatch(text, -1) {
		if x, err := strconv.Atoi(m[1]); err == nil {
			used[x] = true
		}
	}
	return used
}

// freeIndex picks the lowest X that no address, route or box uses.
func freeIndex(ctx context.Context, taken map[int]bool) (int, error) {
	addrs, err := run(ctx, "ip", "-4", "-o", "addr", "show")
	if err != nil {
		return 0, err
	}
	routes, err := run(ctx, "ip", "-4", "-o", "route", "show", "table", "all")
	if err != nil {
		return 0, err
	}
	used := usedIndexes(string(addrs) + "\n" + string(routes))
	for x := 1; x <= maxIndex; x++ {
		if !used[x] && !taken[x] {
			if _, err := os.Stat("/sys/class/net/" + vethName(x)); errors.Is(err, os.ErrNotExist) {
				return x, nil
			}
		}
	}
	return 0, errors.New("no free 198.18.X.0/30 for another box")
}

// setupNet makes the namespace and the veth pair of box index x.
func setupNet(ctx context.Context, x int, netns string) error {
	host, box := boxAddrs(x)
	veth, peer := vethName(x), vethName(x)+"p"
	for _, args := range [][]string{
		{"netns", "add", netns},
		{"link", "add", veth, "type", "veth", "peer", "name", peer, "netns", netns},
		{"-n", netns, "link", "set", peer, "name", "eth0"},
		{"-n", netns, "addr", "add", box + "/30", "dev", "eth0"},
		{"-n", netns, "link", "set", "eth0", "up"},
		{"-n", netns, "link", "set", "lo", "up"},
		{"addr", "add", host + "/30", "dev", veth},
		{"link", "set", veth, "up"},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	// The box's address must go over its own link, nowhere else.
	out, err := run(ctx, "ip", "-4", "route", "get", box)
	if err != nil {
		return err
	}
	if !strings.Contains(string(out), " dev "+veth+" ") {
		return fmt.Errorf("route to the box %s does not take %s: %s", box, veth, strings.TrimSpace(string(out)))
	}
	return nil
}

// teardownNet removes the veth pair (both ends, even when another mount
// namespace still holds the network namespace) and the namespace's name.
func teardownNet(ctx context.Context, veth, netns string) error {
	var errs []error
	if veth != "" {
		if out, err := run(ctx, "ip", "link", "del", veth); err != nil && !strings.Contains(string(out), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	if netns != "" {
		if _, err := os.Stat("/run/netns/" + netns); err == nil {
			if _, err := run(ctx, "ip", "netns", "del", netns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ensureGuard adds the guard route unless one is there; it reports whether
// it added it. A route for exactly 198.18.0.0/15 that leads anywhere is an
// error: boxes must not be reached through it.
func ensureGuard(ctx context.Context) (added bool, err error) {
	out, err := run(ctx, "ip", "-4", "route", "show", "exact", guardPrefix)
	if err != nil {
		return false, err
	}
	if line := strings.TrimSpace(string(out)); line != "" {
		if isGuard(line) {
			return false, nil
		}
		return false, fmt.Errorf("a route for %s that is not a guard: %q", guardPrefix, line)
	}
	if out, err := run(ctx, "ip", "route", "add", "unreachable", guardPrefix, "metric", "4000"); err != nil {
		if strings.Contains(string(out), "File exists") {
			return false, nil // added meanwhile by someone else
		}
		return false, err
	}
	return true, nil
}

func isGuard(line string) bool {
	f := strings.Fields(line)
	return len(f) >= 2 && (f[0] == "unreachable" || f[0] == "blackhole" || f[0] == "prohibit")
}

// guardInUse reports whether anything but the guard itself lies in
// 198.18.0.0/15: a box's link, another test's namespace.
func guardInUse(ctx context.Context) (bool, error) {
	out, err := run(ctx, "ip", "-4", "-o", "route", "show", "table", "all", "to", "root", guardPrefix)
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (len(f) >= 2 && isGuard(line) && f[1] == guardPrefix) {
			continue
		}
		return true, nil
	}
	return false, nil
}

func removeGuard(ctx context.Context) error {
	inUse, err := guardInUse(ctx)
	if err != nil || inUse {
		return err
	}
	if out, err := run(ctx, "ip", "route", "del", "unreachable", guardPrefix, "metric", "4000"); err != nil &&
		!strings.Contains(string(out), "No such process") {
		return err
	}
	return nil
}

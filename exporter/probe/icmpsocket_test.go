package probe

import (
	"os"
	"testing"
)

func TestPingGroupAdmits(t *testing.T) {
	for _, c := range []struct {
		text string
		gids []int
		want bool
		err  bool
	}{
		{"1\t0\n", []int{0, 1, 1000}, false, false}, // the kernel's default: nobody
		{"0\t2147483647\n", []int{0}, true, false},  // systemd's on Debian: everybody
		{"100 200", []int{99, 201}, false, false},
		{"100 200", []int{5, 150}, true, false}, // a supplementary group counts
		{"100 200", []int{200}, true, false},    // both ends included
		{"100", []int{100}, false, true},
		{"a b", []int{0}, false, true},
	} {
		got, err := pingGroupAdmits(c.text, c.gids)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("pingGroupAdmits(%q, %v) = %t, %v; want %t, error %t", c.text, c.gids, got, err, c.want, c.err)
		}
	}
}

// TestICMPSocketAuto checks auto against this machine's own range: it must
// pick what pingGroupAdmits says for the process's groups.
func TestICMPSocketAuto(t *testing.T) {
	b, err := os.ReadFile(pingGroupRangeFile)
	if err != nil {
		t.Skipf("no %s (not Linux): auto means raw", pingGroupRangeFile)
	}
	gids, _ := os.Getgroups()
	admits, err := pingGroupAdmits(string(b), append(gids, os.Getegid()))
	if err != nil {
		t.Fatal(err)
	}
	if s := testSettings(t); s.icmpPrivileged == admits {
		t.Errorf("auto with range %q and groups %v: raw=%t", b, append(gids, os.Getegid()), s.icmpPrivileged)
	}
	if s := testSettings(t, "--probe.icmp-socket=raw"); !s.icmpPrivileged {
		t.Error("raw: not privileged")
	}
	if s := testSettings(t, "--probe.icmp-socket=datagram"); s.icmpPrivileged {
		t.Error("datagram: privileged")
	}
	if _, err := icmpPrivileged("rawest"); err == nil {
		t.Error("an unknown kind is accepted")
	}
}

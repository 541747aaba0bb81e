package probe

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The kinds of ICMP socket a ping probe can use (--probe.icmp-socket).
const (
	// ICMPSocketAuto picks a datagram socket when the kernel lets the
	// prober open one, else a raw socket, as iputils' ping does.
	ICMPSocketAuto = "auto"
	// ICMPSocketRaw needs root or CAP_NET_RAW; every raw socket sees every
	// ICMP packet, and pro-bing attaches a filter to each one.
	ICMPSocketRaw = "raw"
	// ICMPSocketDatagram needs the prober's group in
	// net.ipv4.ping_group_range (systemd sets 0-2147483647 on Debian
	// hosts); the kernel hands each socket its own echo replies only.
	ICMPSocketDatagram = "datagram"
)

// pingGroupRangeFile is where Linux says which groups may open ICMP
// datagram sockets.
const pingGroupRangeFile = "/proc/sys/net/ipv4/ping_group_range"

// icmpPrivileged resolves --probe.icmp-socket to pro-bing's privileged
// switch. auto reads pingGroupRangeFile once, at start: a datagram socket
// when one of the process's groups is in the range, raw otherwise (also
// where the file cannot be read, e.g. off Linux).
func icmpPrivileged(kind string) (bool, error) {
	switch kind {
	case ICMPSocketRaw:
		return true, nil
	case ICMPSocketDatagram:
		return false, nil
	case ICMPSocketAuto:
		b, err := os.ReadFile(pingGroupRangeFile)
		if err != nil {
			return true, nil
		}
		gids, _ := os.Getgroups() // nil when it fails: the egid alone
		ok, err := pingGroupAdmits(string(b), append(gids, os.Getegid()))
		if err != nil {
			return false, fmt.Errorf("--probe.icmp-socket=auto: %s: %w", pingGroupRangeFile, err)
		}
		return !ok, nil
	}
	return false, fmt.Errorf("--probe.icmp-socket: %q is none of auto, raw, datagram", kind)
}

// pingGroupAdmits says whether one of gids is in a ping_group_range value
// ("LOW HIGH"; "1 0", the kernel's default, admits no group).
func pingGroupAdmits(rangeText string, gids []int) (bool, error) {
	f := strings.Fields(rangeText)
	if len(f) != 2 {
		return false, fmt.Errorf("%q is not two group IDs", strings.TrimSpace(rangeText))
	}
	lo, err1 := strconv.ParseInt(f[0], 10, 64)
	hi, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("%q is not two group IDs", strings.TrimSpace(rangeText))
	}
	for _, g := range gids {
		if lo <= int64(g) && int64(g) <= hi {
			return true, nil
		}
	}
	return false, nil
}

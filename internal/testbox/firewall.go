package testbox

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

const nftTable = "mamori_testbox"

// Unreachable(true) makes the box silently unreachable, as a host that hangs
// or sits behind a dropping firewall: an nft rule in the box's network
// namespace drops every packet in and out of its eth0, so connections time
// out (no refusal, no ICMP). Unreachable(false) removes the rule. Both are
// idempotent. Exec is not affected (it does not use the network).
func (b *Box) Unreachable(drop bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := []string{"--net=/run/netns/" + b.Netns, "nft"}
	var script string
	if drop {
		args = append(args, "-f", "-")
		script = fmt.Sprintf(`table inet %[1]s
flush table inet %[1]s
table inet %[1]s {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "eth0" drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		oifname "eth0" drop
	}
}
`, nftTable)
	} else {
		args = append(args, "delete", "table", "inet", nftTable)
	}
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil && !(!drop && strings.Contains(string(out), "No such file or directory")) {
		return fmt.Errorf("box %s: nft: %w: %s", b.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

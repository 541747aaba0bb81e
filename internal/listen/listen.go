// Package listen opens the sockets a mamori binary serves on, from
// exporter-toolkit's web flags: the --web.listen-address addresses, or the
// sockets systemd passes with --web.systemd-socket (socket activation). The
// binaries open them themselves, rather than through web.ListenAndServe, so
// that tests can hand their own listeners to the same Serve.
package listen

import (
	"errors"
	"fmt"
	"net"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/exporter-toolkit/web"
)

// Listeners opens what f names. On error nothing is left open.
func Listeners(f *web.FlagConfig) ([]net.Listener, error) {
	if f.WebSystemdSocket != nil && *f.WebSystemdSocket {
		ls, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("systemd socket activation: %w", err)
		}
		if len(ls) == 0 {
			return nil, errors.New("--web.systemd-socket: systemd passed no socket (is the unit started by a .socket unit?)")
		}
		return ls, nil
	}
	var ls []net.Listener
	for _, addr := range *f.WebListenAddresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("listen: %w", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

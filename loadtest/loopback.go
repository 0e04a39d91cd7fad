package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// LoopbackURL checks that raw is a ws:// URL whose host is, or resolves
// only to, loopback addresses (127.0.0.0/8 or ::1), and returns it with the
// host replaced by the first such address, so the connections go where the
// check looked even if the name's resolution changes (an IPv4 address when
// the name has one). The load tool refuses
// every other target unless told with --allow-remote (TargetURL): it is for
// measuring a node on this machine, and a typo must not load someone
// else's.
func LoopbackURL(ctx context.Context, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", raw, err)
	}
	if u.Scheme != "ws" {
		return "", fmt.Errorf("--url %q: the scheme must be ws:// (the load tool speaks plain WebSocket to a node on this machine)", raw)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", fmt.Errorf("--url %q has no host", raw)
	}
	if port == "" {
		port = "80"
	}
	addrs, err := resolve(ctx, host)
	if err != nil {
		return "", fmt.Errorf("--url %q: the load tool only targets loopback addresses, and %q does not resolve: %w", raw, host, err)
	}
	for _, a := range addrs {
		if a.Unmap().IsLoopback() {
			continue
		}
		if a.String() == host {
			return "", fmt.Errorf("--url %q: the load tool only targets loopback addresses (127.0.0.0/8 or ::1), and %s is not one; %s", raw, host, allowRemoteHint)
		}
		return "", fmt.Errorf("--url %q: the load tool only targets loopback addresses (127.0.0.0/8 or ::1), and %s resolves to %s; %s", raw, host, a, allowRemoteHint)
	}
	// A name such as localhost may resolve to both 127.0.0.1 and ::1; nodes
	// listen on 127.0.0.1 by default.
	pick := addrs[0].Unmap()
	for _, a := range addrs {
		if a.Unmap().Is4() {
			pick = a.Unmap()
			break
		}
	}
	u.Host = net.JoinHostPort(pick.String(), port)
	return u.String(), nil
}

// allowRemoteHint ends the refusal of a target that is not loopback.
const allowRemoteHint = "to load a deployment you run elsewhere, give --allow-remote"

// TargetURL checks raw as the target of a run: with allowRemote, any ws://
// or wss:// URL with a host, returned as it is (a remote name is resolved
// when dialling, and a wss:// host must stay a name for its certificate);
// without it, LoopbackURL.
func TargetURL(ctx context.Context, raw string, allowRemote bool) (string, error) {
	if !allowRemote {
		return LoopbackURL(ctx, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", raw, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("--url %q: the scheme must be ws:// or wss://", raw)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("--url %q has no host", raw)
	}
	return u.String(), nil
}

// resolve returns the addresses of host (an IP literal or a name).
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no addresses")
	}
	return addrs, nil
}

package loadtest

import (
	"context"
	"strings"
	"testing"
)

func TestLoopbackURLRefusesEveryOtherHost(t *testing.T) {
	for _, raw := range []string{
		"ws://10.0.0.1:7701/ws",
		"ws://192.168.1.5/ws",
		"ws://[2001:db8::1]:7701/ws",
		"ws://example.com/ws",
		"ws://example.com:7701/ws",
	} {
		if got, err := LoopbackURL(context.Background(), raw); err == nil {
			t.Errorf("LoopbackURL(%q) = %q, want an error", raw, got)
		} else if !strings.Contains(err.Error(), "loopback") {
			t.Errorf("LoopbackURL(%q): error %q does not say why (loopback only)", raw, err)
		}
	}
}

func TestLoopbackURLRefusesOtherSchemes(t *testing.T) {
	for _, raw := range []string{"wss://127.0.0.1/ws", "http://127.0.0.1/ws", "127.0.0.1:7701", "ws:///ws"} {
		if got, err := LoopbackURL(context.Background(), raw); err == nil {
			t.Errorf("LoopbackURL(%q) = %q, want an error", raw, got)
		}
	}
}

func TestLoopbackURLAcceptsLoopbackAndPinsTheAddress(t *testing.T) {
	tests := []struct {
		raw  string
		want []string // any of these
	}{
		{"ws://127.0.0.1:7701/ws", []string{"ws://127.0.0.1:7701/ws"}},
		{"ws://127.8.9.10:7701/ws", []string{"ws://127.8.9.10:7701/ws"}},
		{"ws://[::1]:7701/ws", []string{"ws://[::1]:7701/ws"}},
		{"ws://localhost:7701/ws", []string{"ws://127.0.0.1:7701/ws", "ws://[::1]:7701/ws"}}, // ::1 only where localhost has no IPv4 address
		{"ws://127.0.0.1/ws", []string{"ws://127.0.0.1:80/ws"}},
	}
	for _, tc := range tests {
		got, err := LoopbackURL(context.Background(), tc.raw)
		if err != nil {
			t.Errorf("LoopbackURL(%q): %v", tc.raw, err)
			continue
		}
		if !contains(tc.want, got) {
			t.Errorf("LoopbackURL(%q) = %q, want one of %q", tc.raw, got, tc.want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package web_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// limitWindow is the rate-limit window of these tests: long, so a window
// never ends during one (each starts at a window's beginning).
const limitWindow = time.Hour

// newLimitedEnv is a player API behind a trusted proxy on 127.0.0.1, so
// X-Forwarded-For chooses each request's client address, with the login
// limits given (0: high enough not to matter).
func newLimitedEnv(t *testing.T, b backend, perAddress, perDevice, perAccount int) *testEnv {
	t.Helper()
	or := func(n int) int {
		if n == 0 {
			return 1000
		}
		return n
	}
	e := newPlayerEnv(t, b, func(c *service.Config) {
		c.Players.LimitWindow = limitWindow
		c.Players.LimitPerAddress, c.Players.LimitPerDevice, c.Players.LimitPerAccount = or(perAddress), or(perDevice), or(perAccount)
	}, func(c *web.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	e.startWindow(limitWindow)
	return e
}

// from is the header naming the client address behind the proxy.
func from(addr string) []string { return []string{"X-Forwarded-For", addr} }

// wantRateLimited checks a 429 says when to retry, in the header and the
// problem, within the window.
func wantRateLimited(t *testing.T, r response) {
	t.Helper()
	wantStatus(t, r, http.StatusTooManyRequests)
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs <= 0 || secs > int(limitWindow/time.Second) {
		t.Errorf("Retry-After %q, want 1 to %d seconds", r.Header.Get("Retry-After"), int(limitWindow/time.Second))
	}
	var p struct {
		Title      string `json:"title"`
		RetryAfter int    `json:"retry_after"`
	}
	r.decode(t, &p)
	if p.Title != "rate_limited" || p.RetryAfter != secs {
		t.Errorf("problem %+v, want rate_limited with retry_after %d", p, secs)
	}
}

func guestBody(deviceID string) map[string]string {
	return map[string]string{"device_id": deviceID, "secret": newSecret()}
}

func TestLoginRateLimitsOverHTTP(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		t.Run("per address", func(t *testing.T) {
			e := newLimitedEnv(t, b, 3, 0, 0)
			c := e.client()
			for i := range 3 {
				r := e.do(c, "POST", "/api/v1/auth/guest", guestBody("dev-a"+strconv.Itoa(i)), from("203.0.113.1")...)
				wantStatus(t, r, http.StatusOK)
			}
			wantRateLimited(t, e.do(c, "POST", "/api/v1/auth/guest", guestBody("dev-a3"), from("203.0.113.1")...))
			// Every login call counts, refresh too.
			wantRateLimited(t, e.do(c, "POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": "tpr_x"}, from("203.0.113.1")...))
			wantStatus(t, e.do(c, "POST", "/api/v1/auth/guest", guestBody("dev-a3"), from("203.0.113.2")...), http.StatusOK)
		})

		// Only failed attempts count against a device or an account, so
		// nobody locks a player out by calling in their name; once a limit
		// is used up, attempts are refused until the window ends (a device's
		// from the address that failed, an account's unless the login names
		// a device the account used before).
		t.Run("per device", func(t *testing.T) {
			e := newLimitedEnv(t, b, 0, 2, 0)
			c := e.client()
			secret := newSecret()
			login := func(device, secret, addr string) response {
				return e.do(c, "POST", "/api/v1/auth/guest", map[string]string{"device_id": device, "secret": secret}, from(addr)...)
			}
			for _, addr := range []string{"203.0.113.10", "203.0.113.11", "203.0.113.12"} {
				wantStatus(t, login("dev-d", secret, addr), http.StatusOK)
			}
			// Wrong secrets count against the device from the address they
			// came from: that address is refused, the device's owner
			// elsewhere is not.
			wantStatus(t, login("dev-d", newSecret(), "203.0.113.13"), http.StatusUnauthorized)
			wantStatus(t, login("dev-d", newSecret(), "203.0.113.13"), http.StatusUnauthorized)
			wantRateLimited(t, login("dev-d", secret, "203.0.113.13"))
			wantStatus(t, login("dev-e", secret, "203.0.113.13"), http.StatusOK)
			wantStatus(t, login("dev-d", secret, "203.0.113.15"), http.StatusOK)
		})

		t.Run("per account", func(t *testing.T) {
			e := newLimitedEnv(t, b, 0, 0, 2)
			c := e.client()
			const password = "a long enough password"
			for _, email := range []string{"carol@example.com", "dave@example.com"} {
				r := e.do(c, "POST", "/api/v1/auth/register", map[string]string{"email": email, "password": password}, from("198.51.100.1")...)
				wantStatus(t, r, http.StatusCreated)
			}
			login := func(email, password, addr string) response {
				return e.do(c, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, from(addr)...)
			}
			for _, addr := range []string{"203.0.113.20", "203.0.113.21", "203.0.113.22"} {
				wantStatus(t, login("carol@example.com", password, addr), http.StatusOK)
			}
			wantStatus(t, login("carol@example.com", "a wrong password", "203.0.113.23"), http.StatusUnauthorized)
			wantStatus(t, login("Carol@Example.com", "a wrong password", "203.0.113.24"), http.StatusUnauthorized)
			wantRateLimited(t, login("carol@example.com", password, "203.0.113.25"))
			wantStatus(t, login("dave@example.com", password, "203.0.113.25"), http.StatusOK)
		})
	})
}

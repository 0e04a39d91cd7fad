package loadtest

import (
	"errors"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// startPlayerWeb serves the player API of a real service in-process on
// 127.0.0.1:0, as `tandem web` does, on SQLite or (with postgres) on a
// fresh PostgreSQL database, and returns its URL. The address and account
// limits are raised as scripts/bench-web raises them, unless edit lowers
// them again.
func startPlayerWeb(t *testing.T, postgres bool, edit func(*service.Config)) string {
	t.Helper()
	cfg := func(c *service.Config) {
		c.Players.LimitPerAddress = 1_000_000
		c.Players.LimitPerAccount = 1_000_000
		if edit != nil {
			edit(c)
		}
	}
	var se *servicetest.Env
	if postgres {
		se = servicetest.NewOn(t, pgtest.Open(t), cfg)
	} else {
		se = servicetest.New(t, cfg)
	}
	s, err := web.New(web.Config{Service: se.Service, Routes: web.PlayerAPIRoutes(se.Service)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// onBothStores runs test against a server on SQLite and one on PostgreSQL
// (skipped without TANDEM_TEST_POSTGRES).
func onBothStores(t *testing.T, test func(t *testing.T, postgres bool)) {
	t.Run("sqlite", func(t *testing.T) { test(t, false) })
	t.Run("postgres", func(t *testing.T) { test(t, true) })
}

// serverPID is this process on Linux, where the in-process server's CPU
// can be read, so the tests cover that part of the report too.
func serverPID() int {
	if runtime.GOOS == "linux" {
		return os.Getpid()
	}
	return 0
}

// The tests assert no timing, only what must hold whatever the machine:
// every request answered as expected, each scheduled request sent once.

func TestPlayerDeviceLoginCreatesEveryDeviceFirstThenLogsThemIn(t *testing.T) {
	onBothStores(t, func(t *testing.T, postgres bool) {
		u := startPlayerWeb(t, postgres, nil)
		var log strings.Builder
		// 100 req/s for 0.3 s after a 60 ms warm-up: 36 requests, 30 of
		// them measured, over a pool of 8 devices (each logged in 4 or 5
		// times).
		rep, err := RunWeb(t.Context(), WebConfig{URL: u, Scenario: "player-device-login", Players: 8,
			Rate: 100, Duration: 300 * time.Millisecond, ServerPID: serverPID(), Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, name := range []string{"requests sent", "device login samples", "answers other than 200",
			"requests without an answer", "logins that created an account"} {
			got[name] = measure(t, rep, name)
		}
		want := map[string]float64{"requests sent": 36, "device login samples": 30, "answers other than 200": 0,
			"requests without an answer": 0, "logins that created an account": 0}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("measures (-want +got):\n%s\nlog:\n%s", d, log.String())
		}
		if !strings.Contains(strings.Join(rep.Notes, "\n"), "--player-limit-per-address") {
			t.Errorf("the report does not say the address limit was raised: %q", rep.Notes)
		}
	})
}

func TestPlayerRefreshUsesEachSessionsNewTokenAndNeverReusesOne(t *testing.T) {
	onBothStores(t, func(t *testing.T, postgres bool) {
		u := startPlayerWeb(t, postgres, nil)
		var log strings.Builder
		// 60 requests over 3 sessions: each session's token is used up and
		// replaced about 20 times, and a single reuse would revoke the
		// session and show as a 401.
		rep, err := RunWeb(t.Context(), WebConfig{URL: u, Scenario: "player-refresh", Players: 3,
			Rate: 100, Duration: 500 * time.Millisecond, ServerPID: serverPID(), Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, name := range []string{"answers other than 200", "requests without an answer",
			"refreshes answered 401 (would mean a reused token)", "sessions retired after a failure"} {
			got[name] = measure(t, rep, name)
		}
		want := map[string]float64{"answers other than 200": 0, "requests without an answer": 0,
			"refreshes answered 401 (would mean a reused token)": 0, "sessions retired after a failure": 0}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("measures (-want +got):\n%s\nlog:\n%s", d, log.String())
		}
		// How many requests found a session free depends on how fast the
		// machine answers (a session still refreshing is skipped, never
		// used twice at once): some, and never more than scheduled.
		if sent, samples := measure(t, rep, "requests sent"), measure(t, rep, "refresh samples"); sent < 1 || sent > 60 || samples < 1 || samples > 50 {
			t.Errorf("%v requests sent and %v measured, want 1 to 60 and 1 to 50\nlog:\n%s", sent, samples, log.String())
		}
	})
}

func TestPlayerPasswordLoginRegistersOneAccountPerWorkerAndLogsIn(t *testing.T) {
	onBothStores(t, func(t *testing.T, postgres bool) {
		u := startPlayerWeb(t, postgres, nil)
		var log strings.Builder
		rep, err := RunWeb(t.Context(), WebConfig{URL: u, Scenario: "player-password-login", Concurrency: 2,
			Duration: 300 * time.Millisecond, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		if n := measure(t, rep, "login samples"); n == 0 {
			t.Errorf("no login measured:\n%s", log.String())
		}
		if n := measure(t, rep, "other failures"); n != 0 {
			t.Errorf("%v other failures:\n%s", n, log.String())
		}
		if !strings.Contains(log.String(), "registering one account per worker (2,") {
			t.Errorf("the log does not show the set-up:\n%s", log.String())
		}
	})
}

func TestPlayerSetupStopsAtTheAddressLimitNamingTheFlag(t *testing.T) {
	u := startPlayerWeb(t, false, func(c *service.Config) { c.Players.LimitPerAddress = 5 })
	_, err := RunWeb(t.Context(), WebConfig{URL: u, Scenario: "player-device-login", Players: 20,
		Duration: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "--player-limit-per-address") {
		t.Errorf("err = %v, want the 429 and the flag to raise", err)
	}
}

func TestPlayerScenariosNeedNoAdmin(t *testing.T) {
	for _, s := range PlayerScenarios {
		c := WebConfig{URL: "http://127.0.0.1:1", Scenario: s}
		if err := c.setDefaults(); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		if c.Players != 10_000 {
			t.Errorf("%s: Players = %d, want the default 10,000", s, c.Players)
		}
	}
	for _, n := range []int{-1, MaxWebPlayers + 1} {
		_, err := RunWeb(t.Context(), WebConfig{URL: "http://127.0.0.1:1", Scenario: "player-refresh", Players: n})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("Players %d: %v, want a ConfigError", n, err)
		}
	}
}

func TestSessionPoolLendsASessionToOneRequestAtATime(t *testing.T) {
	p := &sessionPool{sessions: []pooledSession{{token: "a"}, {token: "b"}, {token: "c"}}}
	take := func(i int) string {
		j, tok, ok := p.take(i)
		if !ok {
			return "-"
		}
		if tok != p.sessions[j].token {
			t.Fatalf("take(%d) lent %q, the session holds %q", i, tok, p.sessions[j].token)
		}
		return tok
	}
	var got []string
	got = append(got, take(0), take(1)) // a, b lent
	got = append(got, take(3))          // a and b are lent: c
	got = append(got, take(4))          // every session lent
	p.give(0, "a2")                     // a refreshed
	p.give(1, "")                       // b failed: retired
	got = append(got, take(1))          // b retired, c lent: a2
	if d := cmp.Diff([]string{"a", "b", "c", "-", "a2"}, got); d != "" {
		t.Errorf("tokens lent (-want +got):\n%s", d)
	}
	// take(3) skipped a and b; take(4) skipped b, c and a; take(1) skipped c.
	if p.skipped != 6 || p.retired != 1 || p.unserved != 1 {
		t.Errorf("skipped %d, retired %d, unserved %d; want 6, 1, 1", p.skipped, p.retired, p.unserved)
	}
}

func TestWebFailuresAreCountedByStatusAndCode(t *testing.T) {
	f := webFailures{answers: map[webAnswer]int{}, log: func(string, ...any) {}}
	f.add("x", 401, []byte(`{"type":"about:blank","title":"unauthenticated","status":401,"code":3}`), nil)
	f.add("x", 401, []byte(`{"title":"unauthenticated"}`), nil)
	f.add("x", 429, []byte(`{"title":"rate_limited","code":7}`), nil)
	f.add("x", 502, []byte(`<html>bad gateway</html>`), nil)
	f.add("x", 0, nil, errors.New("reset"))
	var rep Report
	f.note(&rep, "200")
	want := []string{"answers other than 200: 401 unauthenticated ×2, 429 rate_limited ×1, 502 ×1 (the first 5 failures are in the log)"}
	if d := cmp.Diff(want, rep.Notes); d != "" {
		t.Errorf("notes (-want +got):\n%s", d)
	}
	if n, none := f.count(401); n != 2 || none != 1 {
		t.Errorf("count(401) = %d, %d; want 2, 1", n, none)
	}
}

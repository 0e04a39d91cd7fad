package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeWeb imitates the two endpoints of the web server the web scenarios
// use, recording what the load tool sent.
type fakeWeb struct {
	password string
	mfa      string
	// loginStatus, if set, answers the n-th login (from 1) instead of a
	// success.
	loginStatus func(n int) int

	mu       sync.Mutex
	logins   int
	sessions map[string]bool // tokens issued
	devices  map[string]bool
	// foreign counts requests carrying a session or device cookie the
	// server never issued.
	foreign  int
	previous int // logins that sent back an issued session
	searches []url.Values
	times    []time.Time
	nexts    map[int64]bool // cursors handed out
}

func newFakeWeb(t *testing.T, f *fakeWeb) string {
	f.sessions, f.devices, f.nexts = map[string]bool{}, map[string]bool{}, map[int64]bool{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/admin/v1/session", f.login)
	mux.HandleFunc("GET /api/admin/v1/audit", f.audit)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeWeb) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Name, Password string }
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&in) != nil {
		http.Error(w, "bad body", http.StatusUnsupportedMediaType)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	if k, err := r.Cookie("tandem_session"); err == nil {
		if f.sessions[k.Value] {
			f.previous++
		} else {
			f.foreign++
		}
	}
	if k, err := r.Cookie("tandem_device"); err == nil && !f.devices[k.Value] {
		f.foreign++
	}
	if in.Password != f.password {
		http.Error(w, `{"title":"unauthenticated"}`, http.StatusUnauthorized)
		return
	}
	if f.loginStatus != nil {
		if s := f.loginStatus(f.logins); s != 0 {
			http.Error(w, `{"title":"refused"}`, s)
			return
		}
	}
	tok, dev := fmt.Sprintf("s%d", f.logins), fmt.Sprintf("d%d", f.logins)
	f.sessions[tok], f.devices[dev] = true, true
	http.SetCookie(w, &http.Cookie{Name: "tandem_session", Value: tok, Path: "/", HttpOnly: true})
	http.SetCookie(w, &http.Cookie{Name: "tandem_device", Value: dev, Path: "/", HttpOnly: true})
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"mfa":%q,"admin":{"name":%q}}`, f.mfa, in.Name)
}

// audit answers every search with the same three records and a cursor
// 100 below the one asked for; result=denied fails with 500.
func (f *fakeWeb) audit(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, err := r.Cookie("tandem_session")
	if err != nil || !f.sessions[k.Value] {
		http.Error(w, `{"title":"unauthenticated"}`, http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	f.searches = append(f.searches, q)
	f.times = append(f.times, time.Now())
	if q.Get("result") == "denied" {
		http.Error(w, `{"title":"internal"}`, http.StatusInternalServerError)
		return
	}
	next := int64(5000)
	if b := q.Get("before"); b != "" {
		n, _ := strconv.ParseInt(b, 10, 64)
		next = max(n-100, 0)
	}
	f.nexts[next] = true
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"records":[
		{"seq":3,"at":"2026-03-01T10:00:00Z","actor_name":"alice","action":"role.update","target_type":"role","target_id":"6"},
		{"seq":2,"at":"2026-03-01T09:00:00Z","actor_name":"bob","action":"admin.create","target_type":"admin","target_id":"7"},
		{"seq":1,"at":"2026-03-01T08:00:00Z","actor_name":"alice","action":"session.login","target_type":"admin","target_id":"1"}],
		"next":%d}`, next)
}

func measure(t *testing.T, rep *Report, name string) float64 {
	t.Helper()
	for _, m := range rep.Measures {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("no measure %q in %+v", name, rep.Measures)
	return 0
}

func TestWebAuditSearchSendsOnScheduleWithEveryFilterAndCountsFailures(t *testing.T) {
	f := &fakeWeb{password: "pw"}
	u := newFakeWeb(t, f)
	// 100 req/s for 0.5 s after a 0.1 s warm-up: requests due at 0, 10,
	// …, 590 ms, the last 50 of them measured.
	rep, err := RunWeb(t.Context(), WebConfig{URL: u + "/admin", Scenario: "audit-search",
		AdminName: "viewer", AdminPassword: "pw", Rate: 100, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.searches) != 1+60 {
		t.Fatalf("the server saw %d searches, want the sample page and 60", len(f.searches))
	}
	if got := measure(t, rep, "requests sent"); got != 60 {
		t.Errorf("requests sent = %v, want 60", got)
	}
	if got := measure(t, rep, "audit search samples"); got != 50 {
		t.Errorf("measured %v searches, want the 50 due after the warm-up", got)
	}
	// Open loop: the requests are spread over the schedule (590 ms), not
	// sent at once. The bound is loose: a late first send on a busy machine
	// only shortens the span.
	if span := f.times[len(f.times)-1].Sub(f.times[1]); span < 250*time.Millisecond {
		t.Errorf("60 requests at 100/s were sent within %s", span)
	}
	// Requests i ≡ 3 (mod 7) are result=denied, which fails: 3, 10, …, 59.
	if got := measure(t, rep, "answers other than 200"); got != 9 {
		t.Errorf("answers other than 200 = %v, want 9", got)
	}
	if got := measure(t, rep, "requests without an answer"); got != 0 {
		t.Errorf("requests without an answer = %v", got)
	}

	kinds := map[string]bool{}
	for _, q := range f.searches[1:] {
		for name := range q {
			kinds[name] = true
		}
		if b := q.Get("before"); b != "" {
			n, _ := strconv.ParseInt(b, 10, 64)
			if !f.nexts[n] {
				t.Errorf("before=%s is not a cursor the server gave", b)
			}
		}
		if a := q.Get("actor"); a != "" && a != "alice" && a != "bob" {
			t.Errorf("actor=%q is not an actor the server showed", a)
		}
		if a := q.Get("action"); a != "" && !strings.HasSuffix(a, ".") {
			t.Errorf("action=%q is not a prefix", a)
		}
	}
	want := map[string]bool{"limit": true, "actor": true, "action": true, "result": true, "since": true,
		"until": true, "before": true, "target_type": true, "target_id": true}
	if d := cmp.Diff(want, kinds); d != "" {
		t.Errorf("query parameters used (-want +got):\n%s", d)
	}
	if f.foreign != 0 {
		t.Errorf("%d requests carried cookies the server never set", f.foreign)
	}
}

func TestWebAdminLoginCountsRefusalsApartFromOtherFailures(t *testing.T) {
	f := &fakeWeb{password: "pw", loginStatus: func(n int) int {
		switch {
		case n == 1: // the load tool's first login must succeed
			return 0
		case n%3 == 0:
			return http.StatusTooManyRequests
		case n%5 == 0:
			return http.StatusInternalServerError
		}
		return 0
	}}
	u := newFakeWeb(t, f)
	var log strings.Builder
	rep, err := RunWeb(t.Context(), WebConfig{URL: u, Scenario: "admin-login", AdminName: "bench",
		AdminPassword: "pw", Concurrency: 2, Duration: 300 * time.Millisecond, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	refused, other := measure(t, rep, "refused with 429 (hashing pool full)"), measure(t, rep, "other failures")
	if wantRefused := (f.logins) / 3; refused != float64(wantRefused) {
		t.Errorf("refused = %v, want %d of %d logins", refused, wantRefused, f.logins)
	}
	if wantOther := f.logins/5 - f.logins/15; other != float64(wantOther) {
		t.Errorf("other failures = %v, want %d of %d logins", other, wantOther, f.logins)
	}
	if measure(t, rep, "logins per second (argon2id verifications)") <= 0 || measure(t, rep, "login samples") == 0 {
		t.Errorf("no logins measured: %+v", rep.Measures)
	}
	if !strings.Contains(log.String(), "HTTP 500") {
		t.Errorf("the log does not show the first failure:\n%s", log.String())
	}
	// Each worker sends back the session and device it was given.
	if f.foreign != 0 || f.previous == 0 {
		t.Errorf("%d logins sent cookies never set, %d sent back their session", f.foreign, f.previous)
	}
}

func TestWebRunStopsAtAWrongPasswordOrMFAWithTheServersAnswer(t *testing.T) {
	u := newFakeWeb(t, &fakeWeb{password: "pw"})
	_, err := RunWeb(t.Context(), WebConfig{URL: u, Scenario: "admin-login", AdminName: "a", AdminPassword: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("wrong password: %v, want the 401", err)
	}
	u = newFakeWeb(t, &fakeWeb{password: "pw", mfa: "enrol"})
	_, err = RunWeb(t.Context(), WebConfig{URL: u, Scenario: "audit-search", AdminName: "a", AdminPassword: "pw"})
	if err == nil || !strings.Contains(err.Error(), "MFA") {
		t.Errorf("MFA outstanding: %v, want it named", err)
	}
}

func TestWebConfigDefaults(t *testing.T) {
	c := WebConfig{Scenario: "audit-search", AdminName: "a", AdminPassword: "p"}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	got := [3]any{c.Rate, c.Concurrency, c.Duration}
	if d := cmp.Diff([3]any{200, 4, 30 * time.Second}, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestWebConfigRefusesUnboundedRunsAndOtherHosts(t *testing.T) {
	ok := WebConfig{URL: "http://127.0.0.1:1", Scenario: "audit-search", AdminName: "a", AdminPassword: "p"}
	for name, change := range map[string]func(c *WebConfig){
		"unknown scenario":   func(c *WebConfig) { c.Scenario = "soak" },
		"realtime scenario":  func(c *WebConfig) { c.Scenario = "echo" },
		"no password":        func(c *WebConfig) { c.AdminPassword = "" },
		"no name":            func(c *WebConfig) { c.AdminName = "" },
		"rate too high":      func(c *WebConfig) { c.Rate = MaxWebRate + 1 },
		"negative rate":      func(c *WebConfig) { c.Rate = -1 },
		"concurrency":        func(c *WebConfig) { c.Concurrency = MaxConcurrency + 1 },
		"too long":           func(c *WebConfig) { c.Duration = MaxDuration + time.Second },
		"negative duration":  func(c *WebConfig) { c.Duration = -time.Second },
		"negative pid":       func(c *WebConfig) { c.ServerPID = -1 },
		"another host":       func(c *WebConfig) { c.URL = "http://10.0.0.1:7700" },
		"a WebSocket URL":    func(c *WebConfig) { c.URL = "ws://127.0.0.1:7700" },
		"https":              func(c *WebConfig) { c.URL = "https://127.0.0.1:7700" },
		"an unparsable URL":  func(c *WebConfig) { c.URL = "http://[::1" },
		"a public IPv6 host": func(c *WebConfig) { c.URL = "http://[2001:db8::1]:7700" },
	} {
		c := ok
		change(&c)
		_, err := RunWeb(t.Context(), c)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a ConfigError", name, err)
		}
	}
	_, err := RunWeb(t.Context(), WebConfig{URL: "http://10.0.0.1:7700", Scenario: "admin-login", AdminName: "a", AdminPassword: "p"})
	if err == nil || !strings.Contains(err.Error(), `"http://10.0.0.1:7700"`) {
		t.Errorf("the refusal names %v, want the URL as given", err)
	}
}

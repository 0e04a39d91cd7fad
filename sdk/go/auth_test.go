package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem/protocol"
)

// fakeClock is a clock that moves only when the test says so; it starts on
// a whole second, as the Date header counts whole seconds.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeAuthServer plays just enough of the web server's player API
// (/api/v1/auth/… and the realtime-token route) for the SDK's unit tests:
// it numbers the tokens it issues (tpa_N, tpr_N, rt_N), accepts only the
// latest refresh token and ends the session when an old one comes back,
// and takes only the latest access token before it expires, as the real
// server does. Its Date header and expiry times come from its own clock.
type fakeAuthServer struct {
	t     *testing.T
	srv   *httptest.Server
	clock *fakeClock

	accessLife, realtimeLife time.Duration

	mu            sync.Mutex
	issued        int
	access        string    // the valid access token
	accessExpires time.Time // by the server's clock
	refresh       string    // the valid refresh token; "" once the session ended
	presented     []string  // refresh tokens presented, in order
	bodies        []map[string]any
	paths         []string
	bearers       []string // Authorization headers of logout
	rtBearers     []string // Authorization headers of the realtime-token route
	// gates hold the requests of a route ("refresh", "realtime", "logout")
	// until closed.
	gates     map[string]chan struct{}
	problem   func(w http.ResponseWriter) // answers refresh when set
	rtProblem func(w http.ResponseWriter) // answers the realtime-token route when set
}

const fakeRealtimeURL = "ws://127.0.0.1:1/ws"

func newFakeAuthServer(t *testing.T, clock *fakeClock) *fakeAuthServer {
	t.Helper()
	s := &fakeAuthServer{t: t, clock: clock, accessLife: 15 * time.Minute, realtimeLife: time.Minute}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/guest", func(w http.ResponseWriter, r *http.Request) { s.login(w, r, http.StatusOK, true) })
	mux.HandleFunc("POST /api/v1/auth/register", func(w http.ResponseWriter, r *http.Request) { s.login(w, r, http.StatusCreated, true) })
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) { s.login(w, r, http.StatusOK, false) })
	mux.HandleFunc("POST /api/v1/auth/refresh", s.refreshTokens)
	mux.HandleFunc("POST /api/v1/auth/logout", s.logout)
	mux.HandleFunc("POST /api/v1/players/{player_id}/realtime-token", s.realtimeToken)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// config returns an AuthConfig for s whose clock is the client's.
func (s *fakeAuthServer) config(clock *fakeClock) AuthConfig {
	return AuthConfig{BaseURL: s.srv.URL + "/", HTTPClient: s.srv.Client(), RefreshMargin: 10 * time.Second, now: clock.now}
}

func (s *fakeAuthServer) record(r *http.Request) map[string]any {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.t.Errorf(
			"%s: undecodable body: %v",
			r.URL.Path, err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf(
			"%s: Content-Type %q",
			r.URL.Path, ct)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, r.URL.Path)
	s.bodies = append(s.bodies, body)
	return body
}

func (s *fakeAuthServer) login(w http.ResponseWriter, r *http.Request, status int, created bool) {
	s.record(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issue(w, status, created)
}

// issue answers an AuthResult with new tokens; the caller holds mu.
func (s *fakeAuthServer) issue(w http.ResponseWriter, status int, created bool) {
	now := s.clock.now()
	s.issued++
	n := s.issued
	s.access, s.refresh = fmt.Sprintf("tpa_%d", n), fmt.Sprintf("tpr_%d", n)
	s.accessExpires = now.Add(s.accessLife)
	res := authResult{
		PlayerID: "p_1", Created: created, SessionID: "s_1",
		AccessToken: s.access, AccessExpiresAt: now.Add(s.accessLife),
		RefreshToken: s.refresh, RefreshExpiresAt: now.Add(30 * 24 * time.Hour),
		RealtimeToken: fmt.Sprintf("rt_%d", n), RealtimeExpiresAt: now.Add(s.realtimeLife),
		RealtimeURL: fakeRealtimeURL,
	}
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}

// wait holds a request of route while the test holds the route.
func (s *fakeAuthServer) wait(route string) {
	s.mu.Lock()
	gate := s.gates[route]
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

func (s *fakeAuthServer) refreshTokens(w http.ResponseWriter, r *http.Request) {
	body := s.record(r)
	s.wait("refresh")
	s.mu.Lock()
	defer s.mu.Unlock()
	token, _ := body["refresh_token"].(string)
	s.presented = append(s.presented, token)
	switch {
	case s.problem != nil:
		s.problem(w)
	case token == "" || token != s.refresh:
		s.refresh = "" // reuse ends the session
		writeTestProblem(w, http.StatusUnauthorized, CodeUnauthenticated, "the session has ended", nil)
	default:
		s.issue(w, http.StatusOK, false)
	}
}

func (s *fakeAuthServer) realtimeToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.rtBearers = append(s.rtBearers, r.Header.Get("Authorization"))
	s.mu.Unlock()
	s.wait("realtime")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.now()
	switch {
	case s.rtProblem != nil:
		s.rtProblem(w)
	case s.access == "" || r.Header.Get("Authorization") != "Bearer "+s.access:
		writeTestProblem(w, http.StatusUnauthorized, CodeUnauthenticated, "access token is not valid", nil)
	case !now.Before(s.accessExpires):
		writeTestProblem(w, http.StatusUnauthorized, CodeTokenExpired, "access token has expired: refresh it", nil)
	case r.PathValue("player_id") != "p_1":
		writeTestProblem(w, http.StatusNotFound, CodeNotFound, "no such player", nil)
	default:
		s.issued++
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(realtimeResult{
			RealtimeToken: fmt.Sprintf("rt_%d", s.issued), RealtimeExpiresAt: now.Add(s.realtimeLife), RealtimeURL: fakeRealtimeURL,
		})
	}
}

func (s *fakeAuthServer) logout(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.bearers = append(s.bearers, r.Header.Get("Authorization"))
	s.mu.Unlock()
	s.wait("logout")
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.access {
		writeTestProblem(w, http.StatusUnauthorized, CodeUnauthenticated, "log in first", nil)
		return
	}
	s.access, s.refresh = "", ""
	w.WriteHeader(http.StatusNoContent)
}

// requests returns the paths and bodies of the requests with a body.
func (s *fakeAuthServer) requests() ([]string, []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...), append([]map[string]any(nil), s.bodies...)
}

// logouts returns the Authorization headers of the logout requests.
func (s *fakeAuthServer) logouts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bearers...)
}

// realtimeRequests returns the Authorization headers of the realtime-token
// requests so far.
func (s *fakeAuthServer) realtimeRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rtBearers...)
}

// ended reports whether the server ended the session (logout, reuse).
func (s *fakeAuthServer) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh == ""
}

// refreshes returns the refresh tokens presented so far.
func (s *fakeAuthServer) refreshes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.presented...)
}

func (s *fakeAuthServer) setProblem(f func(w http.ResponseWriter)) {
	s.mu.Lock()
	s.problem = f
	s.mu.Unlock()
}

func (s *fakeAuthServer) setRealtimeProblem(f func(w http.ResponseWriter)) {
	s.mu.Lock()
	s.rtProblem = f
	s.mu.Unlock()
}

// hold makes the requests of route ("refresh", "realtime" or "logout")
// wait until the returned function is called (also at cleanup, so the
// server can close).
func (s *fakeAuthServer) hold(t *testing.T, route string) (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	if s.gates == nil {
		s.gates = map[string]chan struct{}{}
	}
	s.gates[route] = gate
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.gates, route)
			s.mu.Unlock()
			close(gate)
		})
	}
	t.Cleanup(release)
	return release
}

// holdRefreshes holds the refresh requests (see hold).
func (s *fakeAuthServer) holdRefreshes(t *testing.T) (release func()) { return s.hold(t, "refresh") }

// writeTestProblem answers a problem+json document as web/errors.go does;
// extra fields are merged in.
func writeTestProblem(w http.ResponseWriter, status int, code uint32, detail string, extra map[string]any) {
	doc := map[string]any{"type": "about:blank", "title": codeName(code), "status": status, "detail": detail,
		"code": code, "temporary": status == 429 || status == 503}
	for k, v := range extra {
		doc[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(doc)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// loginGuest logs in against s with the client clock cc.
func loginGuest(t *testing.T, s *fakeAuthServer, cc *fakeClock) *Auth {
	t.Helper()
	a, err := LoginGuest(bg(), s.config(cc), "device-1", NewDeviceSecret())
	if err != nil {
		t.Fatalf(
			"LoginGuest: %v",
			err)
	}
	return a
}

func realtimeToken(t *testing.T, a *Auth) string {
	t.Helper()
	tok, err := a.RealtimeToken(bg())
	if err != nil {
		t.Fatalf(
			"RealtimeToken: %v",
			err)
	}
	return tok
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoginsSendTheirFieldsAndKeepTheTokens(t *testing.T) {
	secret := NewDeviceSecret()
	tests := []struct {
		name     string
		login    func(AuthConfig) (*Auth, error)
		path     string
		body     map[string]any
		created  bool
		deviceID string
	}{
		{
			name:    "guest",
			login:   func(cfg AuthConfig) (*Auth, error) { return LoginGuest(bg(), cfg, "device-1", secret) },
			path:    "/api/v1/auth/guest",
			body:    map[string]any{"device_id": "device-1", "secret": secret},
			created: true,
		},
		{
			name: "register",
			login: func(cfg AuthConfig) (*Auth, error) {
				return Register(bg(), cfg, "ann@example.com", "correct horse", "Ann")
			},
			path:     "/api/v1/auth/register",
			body:     map[string]any{"email": "ann@example.com", "password": "correct horse", "display_name": "Ann", "device_id": "device-2"},
			created:  true,
			deviceID: "device-2",
		},
		{
			name: "register without a name or device",
			login: func(cfg AuthConfig) (*Auth, error) {
				return Register(bg(), cfg, "ann@example.com", "correct horse", "")
			},
			path: "/api/v1/auth/register",
			body: map[string]any{"email": "ann@example.com", "password": "correct horse"},
			// the fake server says created for every register
			created: true,
		},
		{
			name:  "email",
			login: func(cfg AuthConfig) (*Auth, error) { return LoginEmail(bg(), cfg, "ann@example.com", "correct horse") },
			path:  "/api/v1/auth/login",
			body:  map[string]any{"email": "ann@example.com", "password": "correct horse"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(t0)
			s := newFakeAuthServer(t, clock)
			cfg := s.config(clock)
			cfg.DeviceID = tc.deviceID
			a, err := tc.login(cfg)
			if err != nil {
				t.Fatalf(
					"login: %v",
					err)
			}
			paths, bodies := s.requests()
			if diff := cmp.Diff([]string{tc.path}, paths); diff != "" {
				t.Errorf(
					"paths (-want +got):\n%s",
					diff)
			}
			if diff := cmp.Diff([]map[string]any{tc.body}, bodies); diff != "" {
				t.Errorf(
					"request body (-want +got):\n%s",
					diff)
			}
			type state struct {
				Player, Session, RealtimeURL, Realtime, Access string
				Created                                        bool
			}
			access, err := a.AccessToken(bg())
			if err != nil {
				t.Fatal(err)
			}
			got := state{a.PlayerID(), a.SessionID(), a.RealtimeURL(), realtimeToken(t, a), access, a.Created()}
			want := state{"p_1", "s_1", fakeRealtimeURL, "rt_1", "tpa_1", tc.created}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf(
					"after login (-want +got):\n%s",
					diff)
			}
			if got := s.refreshes(); len(got) != 0 {
				t.Errorf(
					"fresh tokens were refreshed: %v",
					got)
			}
		})
	}
}

func TestAuthNeverPrintsItsTokens(t *testing.T) {
	clock := newFakeClock(t0)
	a := loginGuest(t, newFakeAuthServer(t, clock), clock)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(format, a); got != "client.Auth{player p_1}" {
			t.Errorf(
				"%s prints %q",
				format, got)
		}
	}
}

// While the access token is fresh, a realtime token is renewed through the
// realtime-token route: the refresh token is not used.
func TestRealtimeTokenIsRenewedOnlyWithinTheMargin(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)

	// Lifetime 60s, less the second the Date header may hide: it expires
	// at t0+59s by the client's count, so it is fresh until t0+49s.
	clock.advance(48 * time.Second)
	if got := realtimeToken(t, a); got != "rt_1" || len(s.refreshes()) != 0 {
		t.Fatalf(
			"outside the margin: token %q after refreshes %v, want rt_1 and none",
			got, s.refreshes())
	}
	clock.advance(2 * time.Second)
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Fatalf(
			"within the margin: token %q, want rt_2",
			got)
	}
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Errorf(
			"just refreshed: token %q, want rt_2",
			got)
	}
	access, err := a.AccessToken(bg())
	if err != nil || access != "tpa_1" {
		t.Errorf("AccessToken after the realtime token was renewed: %q, %v; want tpa_1", access, err)
	}
	if diff := cmp.Diff([]string{"Bearer tpa_1"}, s.realtimeRequests()); diff != "" {
		t.Errorf("realtime-token requests (-want +got):\n%s", diff)
	}
	if got := s.refreshes(); len(got) != 0 {
		t.Errorf("refreshes %v, want none while the access token is fresh", got)
	}
}

// A stale access token cannot ask for a realtime token: a refresh renews
// every token.
func TestRealtimeTokenIsRefreshedWhenTheAccessTokenIsStale(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	s.accessLife = 2 * time.Minute
	a := loginGuest(t, s, clock)

	clock.advance(55 * time.Second)
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Fatalf("at 55s: token %q, want rt_2 (realtime-token route)", got)
	}
	// 110s: the access token (119s by the client's count) is within its
	// margin too.
	clock.advance(55 * time.Second)
	if got := realtimeToken(t, a); got != "rt_3" {
		t.Fatalf("at 110s: token %q, want rt_3 (refresh)", got)
	}
	if access, err := a.AccessToken(bg()); err != nil || access != "tpa_3" {
		t.Errorf("AccessToken after the refresh: %q, %v; want tpa_3", access, err)
	}
	if diff := cmp.Diff([]string{"tpr_1"}, s.refreshes()); diff != "" {
		t.Errorf("refreshes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Bearer tpa_1"}, s.realtimeRequests()); diff != "" {
		t.Errorf("realtime-token requests (-want +got):\n%s", diff)
	}
}

func TestShortLivedTokenIsRefreshedAfterHalfItsLifetime(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	s.realtimeLife = 21 * time.Second // 20s by the client's count: margin 10s, not 30s
	cfg := s.config(clock)
	cfg.RefreshMargin = 30 * time.Second
	a, err := LoginGuest(bg(), cfg, "device-1", NewDeviceSecret())
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(9 * time.Second)
	if got := realtimeToken(t, a); got != "rt_1" {
		t.Fatalf(
			"at 9s of 20s: token %q, want rt_1",
			got)
	}
	clock.advance(time.Second)
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Errorf(
			"at 10s of 20s: token %q, want rt_2",
			got)
	}
}

// A client whose clock is an hour off still keeps its tokens for their
// lifetime: it counts from the server's Date, not from expires_at.
func TestTokenLifetimeIsCountedFromTheServersDate(t *testing.T) {
	for _, skew := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			serverClock := newFakeClock(t0)
			s := newFakeAuthServer(t, serverClock)
			clientClock := newFakeClock(t0.Add(skew))
			a := loginGuest(t, s, clientClock)
			if got := realtimeToken(t, a); got != "rt_1" {
				t.Errorf(
					"fresh token: %q, want rt_1",
					got)
			}
			serverClock.advance(50 * time.Second)
			clientClock.advance(50 * time.Second)
			if got := realtimeToken(t, a); got != "rt_2" {
				t.Errorf(
					"token within the margin: %q, want rt_2",
					got)
			}
		})
	}
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	s.accessLife = time.Minute // stale with the realtime token: a refresh renews both
	a := loginGuest(t, s, clock)
	release := s.holdRefreshes(t)
	clock.advance(55 * time.Second)

	const callers = 8
	got := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i], errs[i] = a.RealtimeToken(bg()) })
	}
	eventually(t, "every caller waits for the refresh", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight != nil && a.inflight.waiters == callers
	})
	release()
	wg.Wait()

	for i := range callers {
		if errs[i] != nil || got[i] != "rt_2" {
			t.Errorf(
				"caller %d: %q, %v; want rt_2",
				i, got[i], errs[i])
		}
	}
	if diff := cmp.Diff([]string{"tpr_1"}, s.refreshes()); diff != "" {
		t.Errorf(
			"refreshes (-want +got):\n%s",
			diff)
	}
}

// A caller that gives up while its refresh is in flight must not lose the
// rotated refresh token: presenting the used one would end the session.
func TestRefreshOutlivesACallerThatGivesUp(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	s.accessLife = time.Minute // stale with the realtime token: a refresh renews both
	a := loginGuest(t, s, clock)
	release := s.holdRefreshes(t)
	clock.advance(55 * time.Second)

	ctx, cancel := context.WithCancel(bg())
	wait := async(func() error {
		_, err := a.RealtimeToken(ctx)
		return err
	})
	eventually(t, "the refresh is in flight", func() bool { return refreshInFlight(a) })
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf(
			"RealtimeToken with a cancelled context: %v",
			err)
	}
	release()
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Errorf(
			"after the abandoned refresh: %q, want rt_2",
			got)
	}
	clock.advance(55 * time.Second)
	if got := realtimeToken(t, a); got != "rt_3" {
		t.Errorf(
			"next refresh: %q, want rt_3",
			got)
	}
	if diff := cmp.Diff([]string{"tpr_1", "tpr_2"}, s.refreshes()); diff != "" {
		t.Errorf(
			"refreshes (-want +got):\n%s",
			diff)
	}
}

func refreshInFlight(a *Auth) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inflight != nil
}

func TestRotatedRefreshTokenIsUsedNextTime(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	s.accessLife = time.Minute // stale with the realtime token: a refresh renews both
	a := loginGuest(t, s, clock)
	clock.advance(55 * time.Second)
	realtimeToken(t, a)
	clock.advance(55 * time.Second)
	realtimeToken(t, a)
	if err := a.Refresh(bg()); err != nil {
		t.Fatalf(
			"Refresh: %v",
			err)
	}
	if got := realtimeToken(t, a); got != "rt_4" {
		t.Errorf(
			"after a forced refresh: %q, want rt_4",
			got)
	}
	if diff := cmp.Diff([]string{"tpr_1", "tpr_2", "tpr_3"}, s.refreshes()); diff != "" {
		t.Errorf(
			"refresh tokens presented (-want +got):\n%s",
			diff)
	}
}

func TestRefusedRefreshIsFinal(t *testing.T) {
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   *ServerError
	}{
		{
			name: "session revoked",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 401, CodeUnauthenticated, "the session has ended", nil)
			},
			want: &ServerError{Code: CodeUnauthenticated, Name: "unauthenticated", Message: "the session has ended"},
		},
		{
			name: "banned until",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 403, CodeBanned, "banned until 2026-12-01T00:00:00Z: cheating", map[string]any{"until": "2026-12-01T00:00:00Z"})
			},
			want: &ServerError{Code: CodeBanned, Name: "banned", Message: "banned until 2026-12-01T00:00:00Z: cheating", Until: until},
		},
		{
			name: "banned permanently",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 403, CodeBanned, "banned permanently: cheating", map[string]any{"until": nil})
			},
			want: &ServerError{Code: CodeBanned, Name: "banned", Message: "banned permanently: cheating"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(t0)
			s := newFakeAuthServer(t, clock)
			s.accessLife = time.Minute // stale with the realtime token: a refresh renews both
			a := loginGuest(t, s, clock)
			s.setProblem(tc.answer)
			clock.advance(55 * time.Second)

			calls := map[string]func() error{
				"RealtimeToken": func() error { _, err := a.RealtimeToken(bg()); return err },
				"AccessToken":   func() error { _, err := a.AccessToken(bg()); return err },
				"Refresh":       func() error { return a.Refresh(bg()) },
				"RealtimeToken again": func() error {
					_, err := a.RealtimeTokenSource()(bg())
					return err
				},
			}
			for _, name := range []string{"RealtimeToken", "AccessToken", "Refresh", "RealtimeToken again"} {
				err := calls[name]()
				var se *ServerError
				if !errors.Is(err, ErrLoggedOut) || !errors.As(err, &se) {
					t.Fatalf(
						"%s: %v, want ErrLoggedOut wrapping a *ServerError",
						name, err)
				}
				if diff := cmp.Diff(tc.want, se); diff != "" {
					t.Errorf(
						"%s: error (-want +got):\n%s",
						name, diff)
				}
				if classOf(fmt.Errorf("tandem: token: %w", err)) != protocol.ClassFinal {
					t.Errorf(
						"%s: the client would keep reconnecting after %v",
						name, err)
				}
			}
			if got := s.refreshes(); len(got) != 1 {
				t.Errorf(
					"refreshes %v, want one: a final refusal is not retried",
					got)
			}
		})
	}
}

func TestTransientRefreshFailureIsRetried(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	s.accessLife = time.Minute // stale with the realtime token: a refresh renews both
	a := loginGuest(t, s, clock)
	s.setProblem(func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "2")
		writeTestProblem(w, 503, CodeUnavailable, "draining", map[string]any{"retry_after": 2})
	})
	clock.advance(55 * time.Second)
	_, err := a.RealtimeToken(bg())
	want := &ServerError{Code: CodeUnavailable, Name: "unavailable", Message: "draining", Temporary: true, RetryAfter: 2 * time.Second}
	if diff := cmp.Diff(want, err); diff != "" || errors.Is(err, ErrLoggedOut) {
		t.Fatalf(
			"RealtimeToken while the server is unavailable: %v (-want +got):\n%s",
			err, diff)
	}
	s.setProblem(nil) // the refused refresh did not use up tpr_1
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Errorf(
			"after the server is back: %q, want rt_2",
			got)
	}
}

func TestErrorAnswersBecomeTypedErrors(t *testing.T) {
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   error
	}{
		{
			name: "rate limited",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "7")
				writeTestProblem(w, 429, CodeRateLimited, "too many logins", map[string]any{"retry_after": 7})
			},
			want: &ServerError{Code: CodeRateLimited, Name: "rate_limited", Message: "too many logins", Temporary: true, RetryAfter: 7 * time.Second},
		},
		{
			name: "rate limited, header only",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "3")
				writeTestProblem(w, 429, CodeRateLimited, "too many logins", nil)
			},
			want: &ServerError{Code: CodeRateLimited, Name: "rate_limited", Message: "too many logins", Temporary: true, RetryAfter: 3 * time.Second},
		},
		{
			name: "validation failed",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 422, CodeValidationFailed, "some fields are invalid",
					map[string]any{"errors": []FieldError{{Field: "email", Message: "not an email address"}}})
			},
			want: &ServerError{Code: CodeValidationFailed, Name: "validation_failed", Message: "some fields are invalid",
				Fields: []FieldError{{Field: "email", Message: "not an email address"}}},
		},
		{
			name: "banned",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 403, CodeBanned, "banned until 2026-12-01T00:00:00Z: cheating", map[string]any{"until": "2026-12-01T00:00:00Z"})
			},
			want: &ServerError{Code: CodeBanned, Name: "banned", Message: "banned until 2026-12-01T00:00:00Z: cheating", Until: until},
		},
		{
			name: "a code newer than the SDK",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 400, 99, "something new", nil)
			},
			want: &ServerError{Code: 99, Name: "unknown", Message: "something new"},
		},
		{
			name: "a proxy's error page",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(502)
				fmt.Fprint(w, "<h1>Bad Gateway</h1>")
			},
			want: &HTTPError{StatusCode: 502, RetryAfter: 5 * time.Second},
		},
		{
			name: "JSON that is not a problem",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(500)
				fmt.Fprint(w, `{"error":"boom"}`)
			},
			want: &HTTPError{StatusCode: 500},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.answer(w) }))
			defer srv.Close()
			_, err := LoginEmail(bg(), AuthConfig{BaseURL: srv.URL, HTTPClient: srv.Client()}, "ann@example.com", "pw")
			if diff := cmp.Diff(tc.want, err); diff != "" {
				t.Errorf(
					"error (-want +got):\n%s",
					diff)
			}
		})
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	if err := a.Logout(bg()); err != nil {
		t.Fatalf(
			"Logout: %v",
			err)
	}
	if diff := cmp.Diff([]string{"Bearer tpa_1"}, s.logouts()); diff != "" {
		t.Errorf(
			"logout's Authorization (-want +got):\n%s",
			diff)
	}
	if _, err := a.RealtimeToken(bg()); !errors.Is(err, ErrLoggedOut) {
		t.Errorf(
			"RealtimeToken after Logout: %v, want ErrLoggedOut",
			err)
	}
	if err := a.Logout(bg()); err != nil {
		t.Errorf(
			"second Logout: %v",
			err)
	}
	if got := s.logouts(); len(got) != 1 {
		t.Errorf(
			"the second Logout called the server: %v",
			got)
	}
}

func TestLogoutOfASessionEndedElsewhereSucceeds(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	s.mu.Lock()
	s.access, s.refresh = "", "" // ended on the server (logged out everywhere)
	s.mu.Unlock()
	if err := a.Logout(bg()); err != nil {
		t.Errorf(
			"Logout: %v",
			err)
	}
	if _, err := a.AccessToken(bg()); !errors.Is(err, ErrLoggedOut) {
		t.Errorf(
			"AccessToken after Logout: %v, want ErrLoggedOut",
			err)
	}
}

// Every reconnect of a Client using RealtimeTokenSource connects with a
// fresh token, and the client stops when the login session is refused.
func TestClientReconnectsWithAFreshRealtimeToken(t *testing.T) {
	clock := newFakeClock(t0)
	authSrv := newFakeAuthServer(t, clock)
	a := loginGuest(t, authSrv, clock)
	s := newFakeServer(t, protocol.CodecJSON)
	cfg := fast
	cfg.Token = a.RealtimeTokenSource()
	p, wait := dial(t, s, cfg)
	if hello := p.handshake("s1", "rt1", false, 0); hello.GetToken() != "rt_1" {
		t.Fatalf(
			"connect token %q, want rt_1",
			hello.GetToken())
	}
	c, err := wait()
	if err != nil {
		t.Fatal(err)
	}

	clock.advance(55 * time.Second)
	p.nc.Close()
	eventAs[*Disconnected](t, c)
	p2 := s.next()
	if hello := p2.handshake("s1", "rt2", true, 0); hello.GetToken() != "rt_2" || hello.GetResumeToken() != "rt1" {
		t.Fatalf(
			"reconnect: token %q resume %q, want rt_2 and rt1",
			hello.GetToken(), hello.GetResumeToken())
	}
	eventAs[*Resumed](t, c)

	authSrv.setRealtimeProblem(func(w http.ResponseWriter) {
		writeTestProblem(w, 403, CodeBanned, "banned permanently: cheating", nil)
	})
	clock.advance(55 * time.Second)
	p2.nc.Close()
	eventAs[*Disconnected](t, c)
	cl := eventAs[*Closed](t, c)
	if !errors.Is(cl.Err, ErrLoggedOut) || !errors.Is(cl.Err, &ServerError{Code: CodeBanned}) {
		t.Errorf(
			"Closed.Err %v, want ErrLoggedOut and banned",
			cl.Err)
	}
	if got := authSrv.refreshes(); len(got) != 0 {
		t.Errorf("refreshes %v, want none: the access token stayed fresh", got)
	}
}

func TestNewDeviceSecretIs128RandomBits(t *testing.T) {
	a, b := NewDeviceSecret(), NewDeviceSecret()
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if len(a) != 22 || err != nil || len(raw) != 16 {
		t.Errorf(
			"secret %q: %d characters, %d bytes, %v; want 22 base64url characters of 16 bytes",
			a, len(a), len(raw), err)
	}
	if a == b {
		t.Errorf("two secrets are equal")
	}
}

func TestAuthConfigNeedsAnHTTPBaseURL(t *testing.T) {
	for _, base := range []string{"", "127.0.0.1:7700", "ws://127.0.0.1:7700", "http://"} {
		if _, err := LoginGuest(bg(), AuthConfig{BaseURL: base}, "d", NewDeviceSecret()); err == nil {
			t.Errorf(
				"BaseURL %q accepted",
				base)
		}
	}
}

// A realtime-token request the server refuses for the access token falls
// back to one refresh, which gets new tokens or ends the login session.
func TestRealtimeTokenRouteRefusalFallsBackToOneRefresh(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(w http.ResponseWriter)
		refreshGone bool // the refresh is refused too
		want        string
	}{
		{
			name: "access token expired by the server's clock",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 401, CodeTokenExpired, "access token has expired: refresh it", nil)
			},
			want: "rt_2",
		},
		{
			name: "session ended elsewhere",
			answer: func(w http.ResponseWriter) {
				writeTestProblem(w, 401, CodeUnauthenticated, "access token is not valid", nil)
			},
			refreshGone: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(t0)
			s := newFakeAuthServer(t, clock)
			a := loginGuest(t, s, clock)
			s.setRealtimeProblem(tc.answer)
			if tc.refreshGone {
				s.setProblem(func(w http.ResponseWriter) {
					writeTestProblem(w, 401, CodeUnauthenticated, "the session has ended", nil)
				})
			}
			clock.advance(55 * time.Second)

			got, err := a.RealtimeToken(bg())
			if tc.refreshGone {
				if !errors.Is(err, ErrLoggedOut) || !errors.Is(err, &ServerError{Code: CodeUnauthenticated}) {
					t.Fatalf("RealtimeToken: %q, %v; want ErrLoggedOut (unauthenticated)", got, err)
				}
				if _, err := a.RealtimeToken(bg()); !errors.Is(err, ErrLoggedOut) {
					t.Errorf("RealtimeToken again: %v, want ErrLoggedOut", err)
				}
			} else if err != nil || got != tc.want {
				t.Fatalf("RealtimeToken: %q, %v; want %s from the refresh", got, err, tc.want)
			}
			if diff := cmp.Diff([]string{"tpr_1"}, s.refreshes()); diff != "" {
				t.Errorf("refreshes (-want +got):\n%s", diff)
			}
			if n := len(s.realtimeRequests()); n != 1 {
				t.Errorf("%d realtime-token requests, want 1", n)
			}
		})
	}
}

func TestRealtimeTokenRouteBanIsFinal(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	s.setRealtimeProblem(func(w http.ResponseWriter) {
		writeTestProblem(w, 403, CodeBanned, "banned until 2026-12-01T00:00:00Z: cheating", map[string]any{"until": "2026-12-01T00:00:00Z"})
	})
	clock.advance(55 * time.Second)

	want := &ServerError{Code: CodeBanned, Name: "banned", Message: "banned until 2026-12-01T00:00:00Z: cheating",
		Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	for _, name := range []string{"RealtimeToken", "AccessToken"} {
		var err error
		if name == "RealtimeToken" {
			_, err = a.RealtimeToken(bg())
		} else {
			_, err = a.AccessToken(bg())
		}
		var se *ServerError
		if !errors.Is(err, ErrLoggedOut) || !errors.As(err, &se) {
			t.Fatalf("%s: %v, want ErrLoggedOut wrapping a *ServerError", name, err)
		}
		if diff := cmp.Diff(want, se); diff != "" {
			t.Errorf("%s: error (-want +got):\n%s", name, diff)
		}
	}
	if got := s.refreshes(); len(got) != 0 {
		t.Errorf("refreshes %v, want none after a ban", got)
	}
}

func TestRealtimeTokenRouteTransientFailureIsRetried(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	s.setRealtimeProblem(func(w http.ResponseWriter) {
		writeTestProblem(w, 503, CodeUnavailable, "draining", nil)
	})
	clock.advance(55 * time.Second)
	_, err := a.RealtimeToken(bg())
	want := &ServerError{Code: CodeUnavailable, Name: "unavailable", Message: "draining", Temporary: true}
	if diff := cmp.Diff(want, err); diff != "" || errors.Is(err, ErrLoggedOut) {
		t.Fatalf("RealtimeToken while the server is unavailable: %v (-want +got):\n%s", err, diff)
	}
	s.setRealtimeProblem(nil)
	if got := realtimeToken(t, a); got != "rt_2" {
		t.Errorf("after the server is back: %q, want rt_2", got)
	}
	if got := s.refreshes(); len(got) != 0 {
		t.Errorf("refreshes %v, want none: a temporary refusal says nothing of the access token", got)
	}
}

func TestConcurrentCallersShareOneRealtimeTokenRequest(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	release := s.hold(t, "realtime")
	clock.advance(55 * time.Second)

	const callers = 8
	got := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i], errs[i] = a.RealtimeToken(bg()) })
	}
	eventually(t, "every caller waits for the request", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight != nil && a.inflight.waiters == callers
	})
	// An access token asked for meanwhile waits too, and is the one the
	// realtime-token request left as it was.
	var access string
	var accessErr error
	wg.Go(func() { access, accessErr = a.AccessToken(bg()) })
	eventually(t, "the access token caller waits", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight != nil && a.inflight.waiters == callers+1
	})
	release()
	wg.Wait()

	for i := range callers {
		if errs[i] != nil || got[i] != "rt_2" {
			t.Errorf("caller %d: %q, %v; want rt_2", i, got[i], errs[i])
		}
	}
	if accessErr != nil || access != "tpa_1" {
		t.Errorf("AccessToken: %q, %v; want tpa_1", access, accessErr)
	}
	if n := len(s.realtimeRequests()); n != 1 {
		t.Errorf("%d realtime-token requests, want 1", n)
	}
	if got := s.refreshes(); len(got) != 0 {
		t.Errorf("refreshes %v, want none", got)
	}
}

// The default HTTP client never takes a login's body (a password, a
// refresh token) to another origin.
func TestDefaultHTTPClientRefusesRedirectsToAnotherOrigin(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	var stolen atomic.Int64
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		s.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(thief.Close)
	redirect := func(target string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect) // 307 resends the body
		}))
		t.Cleanup(srv.Close)
		return srv
	}

	away := redirect(thief.URL)
	_, err := LoginEmail(bg(), AuthConfig{BaseURL: away.URL}, "ann@example.com", "correct horse")
	if err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Errorf("login redirected to another origin: %v, want a refused redirect", err)
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the other origin got %d requests", n)
	}

	// Within the origin, a redirect is followed.
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/old"); ok {
			http.Redirect(w, r, p, http.StatusTemporaryRedirect)
			return
		}
		s.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(same.Close)
	if _, err := LoginEmail(bg(), AuthConfig{BaseURL: same.URL + "/old"}, "ann@example.com", "correct horse"); err != nil {
		t.Errorf("login redirected within the origin: %v", err)
	}
}

func TestLogoutWaitsForARefreshInFlight(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	release := s.holdRefreshes(t)
	refreshed := async(func() error { return a.Refresh(bg()) })
	eventually(t, "the refresh is in flight", func() bool { return len(s.refreshes()) == 0 && refreshInFlight(a) })
	loggedOut := async(func() error { return a.Logout(bg()) })
	eventually(t, "Logout waits for the refresh", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight != nil && a.inflight.waiters == 2
	})
	release()
	if err := refreshed(); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := loggedOut(); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if diff := cmp.Diff([]string{"Bearer tpa_2"}, s.logouts()); diff != "" {
		t.Errorf("logout's Authorization (-want +got):\n%s", diff)
	}
	if !s.ended() {
		t.Error("the session still runs on the server")
	}
}

// A refresh that replaces the access token while the logout is on its way
// makes the server refuse the logout; Logout tries again with the new token
// instead of leaving the session running.
func TestLogoutAgainWhenARefreshReplacedItsAccessToken(t *testing.T) {
	clock := newFakeClock(t0)
	s := newFakeAuthServer(t, clock)
	a := loginGuest(t, s, clock)
	release := s.hold(t, "logout")
	loggedOut := async(func() error { return a.Logout(bg()) })
	eventually(t, "the logout reaches the server", func() bool { return len(s.logouts()) == 1 })
	if err := a.Refresh(bg()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	release()
	if err := loggedOut(); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if diff := cmp.Diff([]string{"Bearer tpa_1", "Bearer tpa_2"}, s.logouts()); diff != "" {
		t.Errorf("logouts' Authorization (-want +got):\n%s", diff)
	}
	if !s.ended() {
		t.Error("the session still runs on the server")
	}
	if _, err := a.AccessToken(bg()); !errors.Is(err, ErrLoggedOut) {
		t.Errorf("AccessToken after Logout: %v, want ErrLoggedOut", err)
	}
}

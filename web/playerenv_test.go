package web_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// backend names the database a player API test runs on.
type backend string

const (
	onSQLite   backend = "sqlite"
	onPostgres backend = "postgres"
)

// onEachBackend runs test on SQLite and on PostgreSQL (skipped without
// TANDEM_TEST_POSTGRES, failed under CI).
func onEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range []backend{onSQLite, onPostgres} {
		t.Run(string(b), func(t *testing.T) { test(t, b) })
	}
}

// testRealtimeURL is the realtime endpoint the player API's tests
// configure, so answers can be checked for it.
const testRealtimeURL = "ws://127.0.0.1:7701/ws"

// newPlayerEnv starts a web server with the admin and player APIs on b.
// editSvc and editWeb, when not nil, change the service's and the
// server's Config.
func newPlayerEnv(t *testing.T, b backend, editSvc func(*service.Config), editWeb func(*web.Config)) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	edit := func(c *service.Config) {
		c.Logger = log
		c.Players.RealtimeURL = testRealtimeURL
		if editSvc != nil {
			editSvc(c)
		}
	}
	var se *servicetest.Env
	switch b {
	case onSQLite:
		se = servicetest.New(t, edit)
	case onPostgres:
		se = servicetest.NewOn(t, pgtest.Open(t), edit)
	default:
		t.Fatalf("unknown backend %q", b)
	}
	e := &testEnv{t: t, store: se.Store, svc: se.Service, clock: se.Clock, logs: logs, roles: se.Roles}
	cfg := web.Config{
		Service: e.svc,
		Logger:  log,
		Routes:  append(web.APIRoutes(e.svc, web.Cookies{}), web.PlayerAPIRoutes(e.svc)...),
		HTMLError: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(tandem.ErrorCodeOf(err).HTTPStatus())
			io.WriteString(w, "error page")
		},
	}
	if editWeb != nil {
		editWeb(&cfg)
	}
	s, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// authResult is the answer of every login-type call.
type authResult struct {
	PlayerID          string    `json:"player_id"`
	Created           bool      `json:"created"`
	SessionID         string    `json:"session_id"`
	AccessToken       string    `json:"access_token"`
	AccessExpiresAt   time.Time `json:"access_expires_at"`
	RefreshToken      string    `json:"refresh_token"`
	RefreshExpiresAt  time.Time `json:"refresh_expires_at"`
	RealtimeToken     string    `json:"realtime_token"`
	RealtimeExpiresAt time.Time `json:"realtime_expires_at"`
	RealtimeURL       string    `json:"realtime_url"`
}

// profile is a player's own view of their account.
type profile struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Email       string            `json:"email"`
	Guest       bool              `json:"guest"`
	Locale      string            `json:"locale"`
	AvatarURL   string            `json:"avatar_url"`
	MM          map[string]string `json:"mm"`
	CreatedAt   time.Time         `json:"created_at"`
}

// newSecret is a device secret as a client makes one: 130 random bits.
func newSecret() string { return rand.Text() }

// bearer is the Authorization header of an access token, for do.
func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// guestLogin logs a device in over HTTP and wants 200.
func (e *testEnv) guestLogin(deviceID, secret, name string, headers ...string) authResult {
	e.t.Helper()
	body := map[string]string{"device_id": deviceID, "secret": secret}
	if name != "" {
		body["display_name"] = name
	}
	r := e.do(e.client(), "POST", "/api/v1/auth/guest", body, headers...)
	wantStatus(e.t, r, http.StatusOK)
	var res authResult
	r.decode(e.t, &res)
	return res
}

// newGuest logs a new device in: a new guest account.
func (e *testEnv) newGuest(name string) authResult {
	e.t.Helper()
	return e.guestLogin("device-"+strings.ToLower(rand.Text()), newSecret(), name)
}

// playerActor authenticates an access token through the service, as the
// server does for a Player route.
func (e *testEnv) playerActor(accessToken string) *service.PlayerActor {
	e.t.Helper()
	p, err := e.svc.AuthenticatePlayer(e.t.Context(), accessToken, service.Client{Address: "127.0.0.1"})
	if err != nil {
		e.t.Fatalf("authenticate player: %v", err)
	}
	return p
}

// startWindow moves the clock to the start of a rate-limit window, so the
// counts of a test cannot be split by a window ending halfway.
func (e *testEnv) startWindow(w time.Duration) {
	now := e.clock.Now()
	e.clock.Advance(now.Truncate(w).Add(w).Sub(now) + time.Millisecond)
}

package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AuthConfig says where and how an Auth talks to the web server's player
// API (/api/v1, docs: the player HTTP API). BaseURL is required.
type AuthConfig struct {
	// BaseURL of the web server, such as http://127.0.0.1:7700.
	BaseURL string
	// HTTPClient makes the requests; nil means a client with a 30s timeout
	// that follows a redirect only within the origin (scheme, host and
	// port) of the request. The bodies hold passwords and refresh tokens:
	// a client given here should refuse redirects to another origin too.
	HTTPClient *http.Client
	// RefreshMargin: a token is refreshed when it is valid for less than
	// this (default 30s), so that it does not expire on its way to the
	// server. For a token whose whole lifetime is shorter than twice the
	// margin, half its lifetime is used instead.
	RefreshMargin time.Duration
	// DeviceID, if set, is sent with Register and LoginEmail, so the
	// server knows the device of the login (device bans, the player's
	// device list). LoginGuest always sends its own.
	DeviceID string

	now func() time.Time // the local clock; tests set a fake one
}

const (
	defaultRefreshMargin = 30 * time.Second
	defaultHTTPTimeout   = 30 * time.Second
	// refreshTimeout bounds a request for new tokens, which no caller can
	// cancel (see Auth.startCall).
	refreshTimeout = 30 * time.Second
	// maxAnswerBytes bounds how much of an answer is read.
	maxAnswerBytes = 1 << 20
)

// ErrLoggedOut: the Auth's login session is over, and every token call
// fails with an error wrapping it. Either Logout was called, or the server
// refused a refresh for good; then the error also wraps the *ServerError
// saying why: unauthenticated (the session was ended elsewhere, or its
// refresh token was used twice, which ends it) or banned (Until says until
// when). A Client whose Config.Token fails with it stops, as after a final
// close. Log in again to continue.
var ErrLoggedOut = errors.New("tandem: logged out")

// HTTPError is an answer of the web server that is not a problem+json
// document (a proxy's error page, for example).
type HTTPError struct {
	StatusCode int // the HTTP status, such as 502
	// RetryAfter is the Retry-After header, if the answer had one.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("tandem: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// NewDeviceSecret returns a new random device secret for LoginGuest: 128
// random bits, base64url without padding (22 characters). Generate it once
// per device and keep it with the device id: whoever has both is the guest.
func NewDeviceSecret() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Auth is a logged-in player: it holds the tokens of one login session and
// keeps them fresh. It is safe for concurrent use.
//
// A realtime token is renewed through the realtime-token route with the
// access token while that is fresh; only a stale access token makes it use
// the refresh token. A refresh uses the refresh token up, so an answer lost
// on the way (a mobile network) leaves a token the server will not take
// again; the realtime-token route changes nothing on the server, so losing
// its answer costs only a retry.
//
// Goroutines: a request for new tokens runs in a goroutine of its own, so
// that a caller that stops waiting (its context ended) does not abandon a
// request that may already have rotated the refresh token on the server;
// it ends when the request does, within refreshTimeout (twice that when a
// realtime-token request falls back to a refresh).
type Auth struct {
	cfg      AuthConfig
	api      playerAPI
	playerID string // fixed for the life of the Auth
	created  bool

	mu     sync.Mutex
	tokens tokenSet
	// inflight is the request for new tokens under way, or nil: one at a
	// time, which every caller needing new tokens meanwhile waits for.
	inflight *tokenCall
	ended    error // set when the login session is over (wraps ErrLoggedOut)
}

// tokenSet is what one login or refresh returned.
type tokenSet struct {
	sessionID   string
	access      expiring
	refresh     string
	realtime    expiring
	realtimeURL string
}

// expiring is a token and when it expires by the local clock.
type expiring struct {
	token    string
	expires  time.Time
	lifetime time.Duration
}

// tokenCall is one request for new tokens that concurrent callers share: a
// refresh, or a realtime token (which may fall back to a refresh).
type tokenCall struct {
	done chan struct{} // closed when err is set
	err  error
	// refreshed is set when the call is, or fell back to, a refresh: every
	// token is new, not only the realtime token. Read it after done.
	refreshed bool
	waiters   int // callers waiting for it (tests watch this)
}

// tokenKind names one of the tokens of a tokenSet.
type tokenKind int

const (
	accessKind tokenKind = iota
	realtimeKind
)

// get returns the token of kind k.
func (t *tokenSet) get(k tokenKind) expiring {
	if k == realtimeKind {
		return t.realtime
	}
	return t.access
}

// LoginGuest logs in as the guest of a device: deviceID is the client's own
// id of the device (1–128 printable ASCII characters) and secret a
// NewDeviceSecret kept with it. The first login of a device creates the
// player (Created reports it); later ones with the same pair log in as that
// player.
func LoginGuest(ctx context.Context, cfg AuthConfig, deviceID, secret string) (*Auth, error) {
	return login(ctx, cfg, "/api/v1/auth/guest", guestRequest{DeviceID: deviceID, Secret: secret})
}

// Register creates a player with an email and a password and logs in.
// displayName may be empty.
func Register(ctx context.Context, cfg AuthConfig, email, password, displayName string) (*Auth, error) {
	in := registerRequest{Email: email, Password: password, DisplayName: displayName, DeviceID: cfg.DeviceID}
	return login(ctx, cfg, "/api/v1/auth/register", in)
}

// LoginEmail logs in with an email and a password.
func LoginEmail(ctx context.Context, cfg AuthConfig, email, password string) (*Auth, error) {
	in := loginRequest{Email: email, Password: password, DeviceID: cfg.DeviceID}
	return login(ctx, cfg, "/api/v1/auth/login", in)
}

// The request bodies. Empty optional fields are left out: the server
// refuses an empty display name or device id.
type (
	guestRequest struct {
		DeviceID string `json:"device_id"`
		Secret   string `json:"secret"`
	}
	registerRequest struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name,omitempty"`
		DeviceID    string `json:"device_id,omitempty"`
	}
	loginRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		DeviceID string `json:"device_id,omitempty"`
	}
	refreshRequest struct {
		RefreshToken string `json:"refresh_token"`
	}
)

// realtimeResult is the answer of the realtime-token route.
type realtimeResult struct {
	RealtimeToken     string    `json:"realtime_token"`
	RealtimeExpiresAt time.Time `json:"realtime_expires_at"`
	RealtimeURL       string    `json:"realtime_url"`
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

func (r *authResult) complete() bool {
	return r.PlayerID != "" && r.AccessToken != "" && r.RefreshToken != "" && r.RealtimeToken != "" &&
		!r.AccessExpiresAt.IsZero() && !r.RealtimeExpiresAt.IsZero()
}

func login(ctx context.Context, cfg AuthConfig, path string, in any) (*Auth, error) {
	api, err := newPlayerAPI(&cfg)
	if err != nil {
		return nil, err
	}
	a := &Auth{cfg: cfg, api: api}
	sent := cfg.now()
	var res authResult
	hdr, err := api.call(ctx, http.MethodPost, path, "", in, &res)
	if err != nil {
		return nil, err
	}
	if !res.complete() {
		return nil, fmt.Errorf("tandem: POST %s: the answer lacks the player id or a token", path)
	}
	a.playerID, a.created = res.PlayerID, res.Created
	a.tokens = newTokenSet(&res, sent, hdr)
	return a, nil
}

// newTokenSet records the tokens of res, their expiries moved to the local
// clock. The client's clock may be off by minutes (a phone, a game
// console); trusting it with the server's expiry times would make every
// token look expired, or fresh for too long. The Date header says when the
// server answered (to the second, rounded down), so expires_at − (Date + 1s)
// is a little less than each token's remaining lifetime, and counting it
// from sent — before the server made the token — errs on the early side
// too. Without a Date header the local clock is trusted.
func newTokenSet(res *authResult, sent time.Time, hdr http.Header) tokenSet {
	exp := localExpiry(sent, hdr)
	return tokenSet{
		sessionID:   res.SessionID,
		access:      exp(res.AccessToken, res.AccessExpiresAt),
		refresh:     res.RefreshToken,
		realtime:    exp(res.RealtimeToken, res.RealtimeExpiresAt),
		realtimeURL: res.RealtimeURL,
	}
}

// localExpiry returns a function that records a token of an answer to a
// request sent at sent with headers hdr, its expiry moved to the local
// clock as newTokenSet explains.
func localExpiry(sent time.Time, hdr http.Header) func(token string, expires time.Time) expiring {
	local := func(expires time.Time) time.Time { return expires }
	if date, err := http.ParseTime(hdr.Get("Date")); err == nil {
		serverNow := date.Add(time.Second)
		local = func(expires time.Time) time.Time { return sent.Add(expires.Sub(serverNow)) }
	}
	return func(token string, expires time.Time) expiring {
		at := local(expires)
		return expiring{token: token, expires: at, lifetime: max(at.Sub(sent), 0)}
	}
}

// fresh reports whether e is valid for longer than the refresh margin.
func (e expiring) fresh(now time.Time, margin time.Duration) bool {
	margin = min(margin, e.lifetime/2)
	return e.token != "" && now.Before(e.expires.Add(-margin))
}

// PlayerID returns the id of the logged-in player.
func (a *Auth) PlayerID() string { return a.playerID }

// Created reports whether the login created the player: Register, or the
// first LoginGuest of a device.
func (a *Auth) Created() bool { return a.created }

// SessionID returns the id of the login session (the player's session list
// names it).
func (a *Auth) SessionID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens.sessionID
}

// RealtimeURL returns the realtime endpoint the web server named in its
// last answer, such as ws://127.0.0.1:7701/ws; "" when it was not told one.
func (a *Auth) RealtimeURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens.realtimeURL
}

// String describes a without its tokens, so that logging an Auth leaks none.
func (a *Auth) String() string { return fmt.Sprintf("client.Auth{player %s}", a.playerID) }

// GoString is String, for %#v.
func (a *Auth) GoString() string { return a.String() }

// AccessToken returns the bearer token for the player API (/api/v1),
// refreshed first when it is within the refresh margin of its expiry.
func (a *Auth) AccessToken(ctx context.Context) (string, error) {
	return a.token(ctx, accessKind)
}

// RealtimeToken returns a token for connecting to a realtime node, renewed
// first when it is within the refresh margin of its expiry: through the
// realtime-token route while the access token is fresh, by a refresh
// otherwise. Concurrent callers that need a new token share one request.
// An error wrapping ErrLoggedOut is final; any other (network,
// rate_limited, unavailable) may go away when retried.
func (a *Auth) RealtimeToken(ctx context.Context) (string, error) {
	return a.token(ctx, realtimeKind)
}

// RealtimeTokenSource returns RealtimeToken as a Config.Token: every
// connect and reconnect of the Client gets a fresh realtime token, and the
// Client stops when the login session is over.
func (a *Auth) RealtimeTokenSource() func(ctx context.Context) (string, error) {
	return a.RealtimeToken
}

// RealtimeURLSource returns a Config.Locate: it asks the web server for a
// new realtime token now, whose answer names the realtime node to use (the
// node holding the player's session while that node is registered,
// otherwise the web server's current pick of a live, lightly loaded node),
// and returns that URL. The token it got is fresh, so the Client's next Config.Token
// call (RealtimeTokenSource) takes it without another request; a request
// for new tokens already in flight is joined rather than repeated. Without
// a URL in the answer it fails, and the Client keeps the URL it has.
func (a *Auth) RealtimeURLSource() func(ctx context.Context) (string, error) {
	return a.locate
}

// locate gets new tokens now (a realtime token while the access token is
// fresh, a refresh otherwise) and returns the realtime URL of the answer.
func (a *Auth) locate(ctx context.Context) (string, error) {
	a.mu.Lock()
	if a.ended != nil {
		defer a.mu.Unlock()
		return "", a.ended
	}
	call := a.inflight
	if call == nil {
		if a.tokens.access.fresh(a.cfg.now(), a.cfg.RefreshMargin) {
			call = a.startCall(ctx, false, a.renewRealtime)
		} else {
			call = a.startCall(ctx, true, a.refreshCall)
		}
	}
	call.waiters++
	a.mu.Unlock()
	if err := a.wait(ctx, call); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.ended != nil:
		return "", a.ended
	case a.tokens.realtimeURL == "":
		return "", errors.New("tandem: the web server named no realtime URL")
	}
	return a.tokens.realtimeURL, nil
}

// token returns the token of kind k, getting new tokens first when it is
// not fresh. While a request for new tokens is in flight, callers wait for
// it rather than use tokens it may be replacing.
func (a *Auth) token(ctx context.Context, k tokenKind) (string, error) {
	a.mu.Lock()
	for {
		if a.ended != nil {
			err := a.ended
			a.mu.Unlock()
			return "", err
		}
		call := a.inflight
		if call == nil {
			now := a.cfg.now()
			if e := a.tokens.get(k); e.fresh(now, a.cfg.RefreshMargin) {
				a.mu.Unlock()
				return e.token, nil
			}
			if k == realtimeKind && a.tokens.access.fresh(now, a.cfg.RefreshMargin) {
				call = a.startCall(ctx, false, a.renewRealtime)
			} else {
				call = a.startCall(ctx, true, a.refreshCall)
			}
		}
		call.waiters++
		a.mu.Unlock()

		if err := a.wait(ctx, call); err != nil {
			return "", err
		}
		a.mu.Lock()
		// What the call just got is fresh for as long as the server allows,
		// so no check (which, against a server that gives very short
		// lifetimes, would ask forever). Only an access token a realtime
		// call left alone needs another look.
		if a.ended == nil && (k == realtimeKind || call.refreshed) {
			tok := a.tokens.get(k).token
			a.mu.Unlock()
			return tok, nil
		}
	}
}

// Refresh gets new tokens now with the refresh token (joining a refresh
// already in flight), for example after the server changed what the
// realtime token says.
func (a *Auth) Refresh(ctx context.Context) error {
	for {
		a.mu.Lock()
		if a.ended != nil {
			defer a.mu.Unlock()
			return a.ended
		}
		call := a.inflight
		if call == nil {
			call = a.startCall(ctx, true, a.refreshCall)
		}
		call.waiters++
		a.mu.Unlock()
		if err := a.wait(ctx, call); err != nil || call.refreshed {
			return err
		}
		// That was a realtime token only: now the refresh.
	}
}

func (a *Auth) wait(ctx context.Context, call *tokenCall) error {
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startCall runs work as the request in flight, in a goroutine of its own;
// the caller holds mu. The request runs apart from ctx's cancellation: the
// server uses up the refresh token as soon as it answers, so an answer
// nobody reads would leave the Auth with a used refresh token, and
// presenting that one again ends the whole session.
func (a *Auth) startCall(ctx context.Context, refresh bool, work func(context.Context, *tokenCall) error) *tokenCall {
	call := &tokenCall{done: make(chan struct{}), refreshed: refresh}
	a.inflight = call
	ctx = context.WithoutCancel(ctx)
	go func() {
		err := work(ctx, call)
		a.mu.Lock()
		call.err = err
		a.inflight = nil
		a.mu.Unlock()
		close(call.done)
	}()
	return call
}

// refreshCall is a startCall work that refreshes.
func (a *Auth) refreshCall(ctx context.Context, _ *tokenCall) error { return a.refresh(ctx) }

// refresh gets new tokens with the refresh token, within refreshTimeout.
// Only the call in flight runs it, so the tokens cannot change meanwhile
// except by Logout.
func (a *Auth) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	a.mu.Lock()
	if a.ended != nil {
		defer a.mu.Unlock()
		return a.ended
	}
	refresh := a.tokens.refresh
	a.mu.Unlock()

	sent := a.cfg.now()
	var res authResult
	hdr, err := a.api.call(ctx, http.MethodPost, "/api/v1/auth/refresh", "", refreshRequest{refresh}, &res)
	if err == nil && !res.complete() {
		err = errors.New("tandem: POST /api/v1/auth/refresh: the answer lacks the player id or a token")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.ended != nil:
		err = a.ended // logged out meanwhile: keep nothing
	case err == nil:
		a.tokens = newTokenSet(&res, sent, hdr)
	case refusedForGood(err):
		err = fmt.Errorf("%w: %w", ErrLoggedOut, err)
		a.end(err)
	}
	return err
}

// renewRealtime is a startCall work that gets a realtime token through the
// realtime-token route with the access token. A ban is final. A temporary
// refusal (rate_limited, unavailable) or a failure to get an answer is
// returned as is: retrying may succeed. Any other refusal (the access
// token expired by the server's clock, or is no longer valid) falls back
// to one refresh, which gets new tokens or says for good that the session
// is over.
func (a *Auth) renewRealtime(ctx context.Context, call *tokenCall) error {
	a.mu.Lock()
	if a.ended != nil {
		defer a.mu.Unlock()
		return a.ended
	}
	access := a.tokens.access.token
	a.mu.Unlock()

	rtCtx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	path := "/api/v1/players/" + url.PathEscape(a.playerID) + "/realtime-token"
	sent := a.cfg.now()
	var res realtimeResult
	hdr, err := a.api.call(rtCtx, http.MethodPost, path, access, nil, &res)
	if err == nil && (res.RealtimeToken == "" || res.RealtimeExpiresAt.IsZero()) {
		err = fmt.Errorf("tandem: POST %s: the answer lacks the token", path)
	}
	var se *ServerError
	switch {
	case err == nil:
	case errors.As(err, &se) && se.Code == CodeBanned:
		err = fmt.Errorf("%w: %w", ErrLoggedOut, err)
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.ended != nil {
			return a.ended
		}
		a.end(err)
		return err
	case errors.As(err, &se) && !se.Temporary:
		call.refreshed = true
		return a.refresh(ctx)
	default:
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended != nil {
		return a.ended // logged out meanwhile: keep nothing
	}
	a.tokens.realtime = localExpiry(sent, hdr)(res.RealtimeToken, res.RealtimeExpiresAt)
	a.tokens.realtimeURL = res.RealtimeURL
	return nil
}

// refusedForGood reports whether a refresh refused with err can never
// succeed: the session was revoked, its refresh token expired or was
// reused, or the player is banned.
func refusedForGood(err error) bool {
	var se *ServerError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case CodeUnauthenticated, CodeTokenExpired, CodeBanned:
		return true
	}
	return false
}

// end forgets the tokens; every later call fails with err. The caller
// holds mu.
func (a *Auth) end(err error) {
	a.ended = err
	a.tokens = tokenSet{sessionID: a.tokens.sessionID}
}

// maxLogoutAttempts bounds how often Logout tries again after a refresh
// replaced the access token it sent.
const maxLogoutAttempts = 3

// Logout ends the login session on the server and forgets its tokens;
// later token calls fail with ErrLoggedOut. A session the server had
// already ended counts as logged out. Close the Client that uses the Auth
// first: after Logout it cannot reconnect.
//
// Logout sends the newest access token: it waits for a refresh in flight,
// and when a refresh replaced the token while the logout was on its way
// (the server then refuses the old one), it logs out again with the new one
// rather than leave the session running on the server.
func (a *Auth) Logout(ctx context.Context) error {
	var err error
	for attempt := 1; ; attempt++ {
		var access string
		access, err = a.AccessToken(ctx)
		if err != nil {
			break
		}
		_, err = a.api.call(ctx, http.MethodPost, "/api/v1/auth/logout", access, nil, nil)
		if !errors.Is(err, &ServerError{Code: CodeUnauthenticated}) {
			break
		}
		if attempt == maxLogoutAttempts || !a.replaced(access) {
			err = nil // the server had ended the session
			break
		}
	}
	if err != nil && !errors.Is(err, ErrLoggedOut) {
		return err
	}
	a.mu.Lock()
	if a.ended == nil {
		a.end(ErrLoggedOut)
	}
	a.mu.Unlock()
	return nil
}

// replaced reports whether access is no longer the Auth's access token, or
// a refresh in flight may replace it: a live session refused it for that.
func (a *Auth) replaced(access string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ended == nil && (a.inflight != nil || a.tokens.access.token != access)
}

// playerAPI makes the HTTP calls of the player API.
type playerAPI struct {
	base string // BaseURL without a trailing slash
	hc   *http.Client
}

// newPlayerAPI checks cfg and fills in its defaults.
func newPlayerAPI(cfg *AuthConfig) (playerAPI, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return playerAPI{}, fmt.Errorf("tandem: AuthConfig.BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout, CheckRedirect: sameOriginRedirect}
	}
	if cfg.RefreshMargin <= 0 {
		cfg.RefreshMargin = defaultRefreshMargin
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return playerAPI{base: strings.TrimRight(cfg.BaseURL, "/"), hc: cfg.HTTPClient}, nil
}

// call sends in (unless nil) as the JSON body, with bearer (unless empty)
// as the Authorization, and decodes a successful (2xx) answer into out
// (unless nil). Any other status is an error: a *ServerError for a
// problem+json answer, an *HTTPError otherwise. Errors never hold a token
// or a secret: neither is ever in the URL.
func (p playerAPI) call(ctx context.Context, method, path, bearer string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("tandem: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("tandem: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tandem: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("tandem: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, answerError(resp, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("tandem: %s %s: undecodable answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// maxRedirects is how many redirects the default client follows, as many
// as an http.Client without a CheckRedirect does.
const maxRedirects = 10

// sameOriginRedirect is the default client's CheckRedirect: it refuses a
// redirect to another origin than the first request's (another host or
// port, or from https to http), which would send the request's body — a
// password, a refresh token — there.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	if from, to := origin(via[0].URL), origin(req.URL); from != to {
		return fmt.Errorf("tandem: refusing a redirect from %s to another origin, %s", from, to)
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("tandem: stopped after %d redirects", maxRedirects)
	}
	return nil
}

// origin returns u's scheme, host and port (the scheme's default when
// absent), lower case: two URLs of one origin give the same string.
func origin(u *url.URL) string {
	scheme, port := strings.ToLower(u.Scheme), u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// problemDoc is the web server's problem+json error document.
type problemDoc struct {
	Detail     string       `json:"detail"`
	Code       uint32       `json:"code"`
	Temporary  bool         `json:"temporary"`
	Errors     []FieldError `json:"errors"`
	RetryAfter int64        `json:"retry_after"` // seconds
	Until      *time.Time   `json:"until"`       // banned; null when permanent
}

// answerError turns an unsuccessful answer into an error.
func answerError(resp *http.Response, body []byte) error {
	retry := retryAfter(resp.Header.Get("Retry-After"))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var doc problemDoc
	if mt != "application/problem+json" || json.Unmarshal(body, &doc) != nil || doc.Code == 0 {
		return &HTTPError{StatusCode: resp.StatusCode, RetryAfter: retry}
	}
	if doc.RetryAfter > 0 {
		retry = time.Duration(doc.RetryAfter) * time.Second
	}
	se := &ServerError{Code: doc.Code, Name: codeName(doc.Code), Message: doc.Detail, Temporary: doc.Temporary,
		Fields: doc.Errors, RetryAfter: retry}
	if doc.Until != nil {
		se.Until = doc.Until.UTC()
	}
	return se
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(h); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The player scenarios load the player API (/api/v1) of `tandem web`:
//   - player-device-login: guest logins (POST /api/v1/auth/guest) at a
//     fixed rate, open loop, of a pool of devices taken in turn. Each
//     device's first login creates its account, so the set-up logs every
//     device in once (not measured) and the run measures logins of
//     existing devices.
//   - player-refresh: refreshes (POST /api/v1/auth/refresh) at a fixed
//     rate, open loop, of a pool of sessions logged in as guests during
//     the set-up; each request uses up its session's current refresh token
//     and keeps the new one.
//   - player-password-login: a few workers each register an account during
//     the set-up, then log in with its email and password over and over
//     (POST /api/v1/auth/login); logins per second (each is one argon2id
//     verification) and how many the hashing pool refused with 429.
// All the load comes from one address (127.0.0.1), and every call counts
// against that address's limit: the server needs its
// --player-limit-per-address raised for the run. A counter is updated on
// every call whatever its maximum, so raising it changes no work.

const (
	playerAPI = "/api/v1"
	// webSetupInFlight is how many set-up calls run at once.
	webSetupInFlight = 16
	// webSetupPerPlayer bounds the set-up of a pool: this long per device,
	// on top of webDrainLimit (at least 50 first logins a second).
	webSetupPerPlayer = 20 * time.Millisecond
	// limitHint says what to do about a 429 of the address limit.
	limitHint = "the load comes from one address: start the server with --player-limit-per-address " +
		"(and, for player-refresh, --player-limit-per-account) raised, e.g. to 1000000"
)

// webSetupLimit is how long a scenario's set-up may take.
func webSetupLimit(cfg WebConfig) time.Duration {
	switch cfg.Scenario {
	case "player-device-login", "player-refresh":
		return time.Duration(cfg.Players) * webSetupPerPlayer
	case "player-password-login":
		return time.Duration(cfg.Concurrency) * time.Second // one argon2id hash each
	}
	return 0
}

// device is a device of the pool: its id and the secret it logs in with.
type device struct {
	id, secret string
}

// newDevices returns n devices no earlier run used: their ids carry a
// random run name, so a run against a database that holds an earlier
// run's devices still creates its own.
func newDevices(n int) []device {
	run := newRunID()
	d := make([]device, n)
	for i := range d {
		// rand.Text is 26 characters of base32 (130 bits), which the
		// base64url alphabet of secrets includes.
		d[i] = device{id: fmt.Sprintf("loadtest-%s-%d", run, i), secret: rand.Text()}
	}
	return d
}

// authAnswer is the part of an AuthResult the scenarios use.
type authAnswer struct {
	Created      bool   `json:"created"`
	RefreshToken string `json:"refresh_token"`
}

// newPost builds a POST of in as JSON to path of the player API.
func (w *webRunner) newPost(ctx context.Context, path string, in any) (*http.Request, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+playerAPI+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func (w *webRunner) guestRequest(ctx context.Context, d device) (*http.Request, error) {
	return w.newPost(ctx, "/auth/guest", map[string]string{"device_id": d.id, "secret": d.secret})
}

// setupError describes a set-up call the server refused, in its own words.
func setupError(status int, body []byte) error {
	err := fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(body[:min(len(body), 300)]))
	if status == http.StatusTooManyRequests {
		return fmt.Errorf("%w (%s)", err, limitHint)
	}
	return err
}

// setUp calls one for 0 … n-1, webSetupInFlight at a time, and stops at
// the first error, which it returns: a server that refuses the set-up
// fails the run with its own answer instead of a table of errors.
func (w *webRunner) setUp(ctx context.Context, n int, what string, one func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.logf("set-up: %s (%d, not measured)", what, n)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(webSetupInFlight, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := one(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("set-up: %s: %w", what, hintHTTP(err))
	}
	w.logf("set-up: done in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

// createDevices logs every device in once, which creates its guest
// account, and returns each one's refresh token.
func (w *webRunner) createDevices(ctx context.Context, devices []device) ([]string, error) {
	tokens := make([]string, len(devices))
	err := w.setUp(ctx, len(devices), "the first login of each device, creating its guest account", func(ctx context.Context, i int) error {
		req, err := w.guestRequest(ctx, devices[i])
		if err != nil {
			return err
		}
		resp, body, err := w.do(req, true)
		if err != nil {
			return fmt.Errorf("POST %s/auth/guest: %w", playerAPI, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s/auth/guest: %w", playerAPI, setupError(resp.StatusCode, body))
		}
		var a authAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return fmt.Errorf("POST %s/auth/guest: %w", playerAPI, err)
		}
		if !a.Created || a.RefreshToken == "" {
			return fmt.Errorf("POST %s/auth/guest: the first login of device %s answered created=%t and a refresh token of %d characters",
				playerAPI, devices[i].id, a.Created, len(a.RefreshToken))
		}
		tokens[i] = a.RefreshToken
		return nil
	})
	return tokens, err
}

// playerNotes are the notes every player scenario's report carries.
func (w *webRunner) playerNotes(rep *Report) {
	rep.note("all requests come from one address (127.0.0.1), so the server ran with --player-limit-per-address raised " +
		"(scripts/bench-web: 1000000); its counter is updated on every call whatever its maximum, so this changes no work")
	rep.note("failures are counted over the whole run, warm-up included; the set-up is not measured")
}

// playerDeviceLogin logs the devices of the pool in, in turn, at Rate.
func (w *webRunner) playerDeviceLogin(ctx context.Context) (*Report, error) {
	cfg := w.cfg
	devices := newDevices(cfg.Players)
	if _, err := w.createDevices(ctx, devices); err != nil {
		return nil, err
	}
	rep := w.newReport(fmt.Sprintf("open loop at %d req/s for %s after a %s warm-up: POST %s/auth/guest of %d existing devices in turn "+
		"(each created by its first login during the set-up, not measured), all from one address",
		cfg.Rate, cfg.Duration, w.warm, playerAPI, cfg.Players))
	w.logf("device logins at %d req/s for %s after a %s warm-up", cfg.Rate, cfg.Duration, w.warm)
	var created atomic.Int64
	run, err := w.openLoop(ctx, func(ctx context.Context, i int) (sentAt, done time.Time, answered bool) {
		d := devices[i%len(devices)]
		req, err := w.guestRequest(ctx, d)
		if err != nil {
			w.failures.add("guest login", 0, nil, err)
			return
		}
		sentAt = time.Now()
		resp, body, err := w.do(req, true)
		done = time.Now()
		switch {
		case err != nil:
			w.failures.add("POST auth/guest", 0, nil, err)
			return sentAt, done, false
		case resp.StatusCode != http.StatusOK:
			w.failures.add("POST auth/guest", resp.StatusCode, body, nil)
		default:
			var a authAnswer
			if json.Unmarshal(body, &a) == nil && a.Created {
				created.Add(1)
			}
		}
		return sentAt, done, true
	})
	if err != nil {
		return nil, err
	}
	run.report(rep, "device login", &w.failures)
	rep.atMost("logins that created an account", float64(created.Load()), UnitCount, 0, "0")
	rep.usageMeasures(run.usage, 0)
	w.failures.note(rep, "200")
	w.playerNotes(rep)
	run.notes(rep)
	return rep, nil
}

// sessionPool holds the refresh scenario's sessions and their current
// refresh tokens. A session is lent to one request at a time: two
// refreshes of one token would be a reuse, which revokes the session.
type sessionPool struct {
	mu       sync.Mutex
	sessions []pooledSession
	skipped  int64 // sessions passed over because their refresh was in flight
	retired  int   // sessions dropped after a failure
	unserved int64 // requests not sent: no session was free
}

type pooledSession struct {
	token   string
	lent    bool
	retired bool
}

// take lends the session for request i: the i-th in turn, or the first
// after it that is neither lent nor retired.
func (p *sessionPool) take(i int) (int, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.sessions)
	for k := range n {
		j := (i + k) % n
		s := &p.sessions[j]
		switch {
		case s.retired:
		case s.lent:
			p.skipped++
		default:
			s.lent = true
			return j, s.token, true
		}
	}
	p.unserved++
	return 0, "", false
}

// give takes session j back with its current refresh token; "" retires
// it, when a failure leaves its token unknown or used up.
func (p *sessionPool) give(j int, token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.sessions[j]
	s.lent = false
	if token == "" {
		s.retired = true
		p.retired++
		return
	}
	s.token = token
}

// playerRefresh refreshes the sessions of the pool, in turn, at Rate.
func (w *webRunner) playerRefresh(ctx context.Context) (*Report, error) {
	cfg := w.cfg
	tokens, err := w.createDevices(ctx, newDevices(cfg.Players))
	if err != nil {
		return nil, err
	}
	pool := &sessionPool{sessions: make([]pooledSession, len(tokens))}
	for i, t := range tokens {
		pool.sessions[i].token = t
	}
	perSession := float64(cfg.Rate) * (w.warm + cfg.Duration).Seconds() / float64(cfg.Players)
	rep := w.newReport(fmt.Sprintf("open loop at %d req/s for %s after a %s warm-up: POST %s/auth/refresh of %d guest sessions in turn "+
		"(logged in during the set-up, not measured; %.1f refreshes per session), each keeping the new refresh token, all from one address",
		cfg.Rate, cfg.Duration, w.warm, playerAPI, cfg.Players, perSession))
	w.logf("refreshes at %d req/s for %s after a %s warm-up", cfg.Rate, cfg.Duration, w.warm)
	run, err := w.openLoop(ctx, func(ctx context.Context, i int) (sentAt, done time.Time, answered bool) {
		j, token, ok := pool.take(i)
		if !ok {
			return
		}
		req, err := w.newPost(ctx, "/auth/refresh", map[string]string{"refresh_token": token})
		if err != nil {
			pool.give(j, token)
			w.failures.add("refresh", 0, nil, err)
			return
		}
		sentAt = time.Now()
		resp, body, err := w.do(req, true)
		done = time.Now()
		var a authAnswer
		switch {
		case err != nil:
			// The server may have rotated the token: using it again could
			// be a reuse.
			pool.give(j, "")
			w.failures.add("POST auth/refresh", 0, nil, err)
			return sentAt, done, false
		case resp.StatusCode == http.StatusOK && json.Unmarshal(body, &a) == nil && a.RefreshToken != "":
			pool.give(j, a.RefreshToken)
		case resp.StatusCode == http.StatusOK:
			pool.give(j, "")
			w.failures.add("POST auth/refresh", 0, nil, errors.New("a 200 answer without a refresh token"))
		case resp.StatusCode == http.StatusTooManyRequests:
			// Refused before the token was looked at: it is still good.
			pool.give(j, token)
			w.failures.add("POST auth/refresh", resp.StatusCode, body, nil)
		default:
			pool.give(j, "")
			w.failures.add("POST auth/refresh", resp.StatusCode, body, nil)
		}
		return sentAt, done, true
	})
	if err != nil {
		return nil, err
	}
	run.report(rep, "refresh", &w.failures)
	unauthorized, _ := w.failures.count(http.StatusUnauthorized)
	rep.atMost("refreshes answered 401 (would mean a reused token)", float64(unauthorized), UnitCount, 0, "0")
	pool.mu.Lock()
	rep.info("sessions skipped: their previous refresh still in flight", float64(pool.skipped), UnitCount)
	rep.info("sessions retired after a failure", float64(pool.retired), UnitCount)
	if pool.unserved > 0 {
		rep.note("%d requests were not sent: every session was in flight or retired", pool.unserved)
	}
	pool.mu.Unlock()
	rep.usageMeasures(run.usage, 0)
	w.failures.note(rep, "200")
	w.playerNotes(rep)
	if perSession > 10 {
		rep.note("each session is refreshed %.1f times: above the server's default --player-limit-per-account (10 per minute) that needs raising too", perSession)
	}
	rep.note("a session is never refreshed twice at once (that would be a reuse, which revokes it): one whose refresh is still in flight is skipped for the next; a session is retired after a failure that may have used up its token")
	run.notes(rep)
	return rep, nil
}

// playerPasswordLogin has Concurrency workers, each with an account it
// registered during the set-up, log in over and over.
func (w *webRunner) playerPasswordLogin(ctx context.Context) (*Report, error) {
	cfg := w.cfg
	run := newRunID()
	type account struct{ email, password string }
	accounts := make([]account, cfg.Concurrency)
	for i := range accounts {
		accounts[i] = account{fmt.Sprintf("loadtest-%s-%d@example.com", run, i), rand.Text()}
	}
	err := w.setUp(ctx, len(accounts), "registering one account per worker", func(ctx context.Context, i int) error {
		req, err := w.newPost(ctx, "/auth/register", map[string]string{"email": accounts[i].email, "password": accounts[i].password})
		if err != nil {
			return err
		}
		resp, body, err := w.do(req, true)
		if err != nil {
			return fmt.Errorf("POST %s/auth/register: %w", playerAPI, err)
		}
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST %s/auth/register: %w", playerAPI, setupError(resp.StatusCode, body))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := w.newReport(fmt.Sprintf("%d logins in flight for %s after a %s warm-up: POST %s/auth/login, each worker with the email and password of an account it registered during the set-up, all from one address",
		cfg.Concurrency, cfg.Duration, w.warm, playerAPI))
	w.logf("%d workers logging in for %s after a %s warm-up", cfg.Concurrency, cfg.Duration, w.warm)
	logins, err := w.loginLoop(ctx, func(ctx context.Context, worker int) loginOutcome {
		a := accounts[worker]
		req, err := w.newPost(ctx, "/auth/login", map[string]string{"email": a.email, "password": a.password})
		if err != nil {
			w.failures.add("login", 0, nil, err)
			return loginFailed
		}
		resp, body, err := w.do(req, false)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.failures.add("POST auth/login", 0, nil, err)
			}
			return loginFailed
		case resp.StatusCode == http.StatusOK:
			return loginOK
		case resp.StatusCode == http.StatusTooManyRequests && hashingPoolFull(body):
			return loginRefused
		}
		w.failures.add("POST auth/login", resp.StatusCode, body, nil)
		return loginFailed
	})
	if err != nil {
		return nil, err
	}
	logins.report(rep, "logins per second (argon2id verifications)", "refused with 429 (hashing pool full)", &w.failures)
	w.failures.note(rep, "200")
	w.playerNotes(rep)
	rep.note("a 429 of the rate limits (not of the hashing pool) counts among the other failures")
	return rep, nil
}

// hashingPoolFull tells the hashing pool's 429 from a rate limit's: both
// are rate_limited, and only the detail differs.
func hashingPoolFull(body []byte) bool {
	var p struct {
		Detail string `json:"detail"`
	}
	return json.Unmarshal(body, &p) == nil && strings.Contains(p.Detail, "password checks")
}

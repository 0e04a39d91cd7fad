package token_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/token"
)

// deadline bounds every wait of these tests; none is expected to come near.
const deadline = 10 * time.Second

// jwksServer is a web server's /.well-known/jwks.json whose keys, status and
// body the test changes while it runs. It counts the requests it answers.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	keys   map[string]ed25519.PublicKey
	status int    // 0: 200
	body   string // "": the keys as JWKS
	gate   chan struct{}
}

func newJWKSServer(t *testing.T, seeds ...byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.setKeys(seeds...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		gate, status, body, keys := s.gate, s.status, s.body, s.keys
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		if body == "" {
			b, err := token.MarshalJWKS(keys)
			if err != nil {
				t.Error(err)
			}
			body = string(b)
		}
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.WriteHeader(status)
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// setKeys makes the server publish the public keys of keyFromSeed(seeds...).
func (s *jwksServer) setKeys(seeds ...byte) {
	keys := map[string]ed25519.PublicKey{}
	for _, seed := range seeds {
		kid, pub := pubFromSeed(seed)
		keys[kid] = pub
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys, s.status, s.body = keys, 0, ""
}

// fail makes the server answer with status and body.
func (s *jwksServer) fail(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// hold makes requests wait until the returned function is called.
func (s *jwksServer) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(gate)
	})
}

func (s *jwksServer) fetcher() func(context.Context) (map[string]ed25519.PublicKey, error) {
	return token.JWKSFetcher(s.Client(), s.URL+"/.well-known/jwks.json")
}

// tokenOf returns a valid token (at time now) signed with keyFromSeed(seed)
// under its own key id, as the web server signs them.
func tokenOf(t *testing.T, seed byte) string {
	t.Helper()
	kid, _ := pubFromSeed(seed)
	c := validClaims()
	c.Subject = "p-" + kid
	return mustSign(t, token.NewSigner(kid, keyFromSeed(seed)), c)
}

// fakeClock is a RemoteConfig.Now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func wantUnknownKey(t *testing.T, err error) {
	t.Helper()
	var terr *tandem.Error
	if !errors.As(err, &terr) || terr.Code != tandem.EUnauthenticated || !strings.Contains(terr.Message, "unknown key") {
		t.Fatalf("Verify error %v, want unauthenticated: unknown key", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("no %s within %s", what, deadline)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRemoteKeySetFetchesTheKeysForAnUnknownKeyAndVerifies(t *testing.T) {
	srv := newJWKSServer(t, 1, 2)
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher()})

	for _, seed := range []byte{1, 2, 1} {
		kid, _ := pubFromSeed(seed)
		got, err := keys.Verify(tokenOf(t, seed), now, tandem.AudienceRealtime)
		if err != nil {
			t.Fatalf("Verify a token of key %d: %v", seed, err)
		}
		if got.KeyID != kid {
			t.Errorf("claims kid %q, want %q", got.KeyID, kid)
		}
	}
	// The first token fetched both keys; the others found them held.
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

func TestRemoteKeySetLearnsAKeyPublishedLater(t *testing.T) {
	srv := newJWKSServer(t, 1)
	clock := &fakeClock{t: now}
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), MinInterval: time.Minute, Now: clock.Now})
	if _, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime); err != nil {
		t.Fatal(err)
	}

	// The web server rotates: key 2 signs from now on.
	srv.setKeys(1, 2)
	clock.Advance(time.Minute)
	if _, err := keys.Verify(tokenOf(t, 2), now, tandem.AudienceRealtime); err != nil {
		t.Fatalf("Verify a token of the new key: %v", err)
	}
	if _, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime); err != nil {
		t.Fatalf("Verify a token of the old key during the rollover: %v", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

func TestRemoteKeySetStopsVerifyingAKeyNoLongerPublishedAfterARefresh(t *testing.T) {
	srv := newJWKSServer(t, 1, 2)
	keys := token.NewRemoteKeySet(token.RemoteConfig{
		Fetch:       srv.fetcher(),
		Refresh:     5 * time.Millisecond,
		MinInterval: time.Hour, // only Run's refreshes fetch
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); keys.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "refresh", func() bool { return srv.requests.Load() >= 1 })
	old, current := tokenOf(t, 1), tokenOf(t, 2)
	for _, tok := range []string{old, current} {
		if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
			t.Fatalf("Verify before the rollover ended: %v", err)
		}
	}

	srv.setKeys(2) // the rollover ends: key 1 retired
	var err error
	waitFor(t, "refusal of the retired key", func() bool {
		_, err = keys.Verify(old, now, tandem.AudienceRealtime)
		return err != nil
	})
	wantUnknownKey(t, err)
	if _, err := keys.Verify(current, now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify a token of the key still published: %v", err)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRemoteKeySetConcurrentUnknownKeysShareOneFetch(t *testing.T) {
	srv := newJWKSServer(t, 1)
	release := srv.hold()
	defer release()
	// A clock far apart at every call: MinInterval never holds a caller
	// back, so only sharing the fetch in flight keeps the count at one.
	var calls atomic.Int64
	keys := token.NewRemoteKeySet(token.RemoteConfig{
		Fetch: srv.fetcher(),
		Now:   func() time.Time { return now.Add(time.Duration(calls.Add(1)) * time.Hour) },
	})

	const callers = 8
	tok := tokenOf(t, 1)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := keys.Verify(tok, now, tandem.AudienceRealtime)
			errs <- err
		}()
	}
	// Release the fetch only once the other callers wait for it.
	waitFor(t, "the fetch", func() bool { return srv.requests.Load() == 1 })
	waitFor(t, "callers waiting for the fetch in flight", func() bool { return waitingForFetch() == callers-1 })
	release()
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

// waitingForFetch counts the goroutines blocked waiting for another
// caller's fetch inside RemoteKeySet.Verify.
func waitingForFetch() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[chan receive") && strings.Contains(g, "(*RemoteKeySet).fetchForUnknownKey") {
			n++
		}
	}
	return n
}

func TestRemoteKeySetMinIntervalBoundsFetchesForUnknownKeys(t *testing.T) {
	srv := newJWKSServer(t, 1)
	clock := &fakeClock{t: now}
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), MinInterval: time.Minute, Now: clock.Now})

	// Tokens signed with keys the web server never published.
	for seed := byte(100); seed < 120; seed++ {
		_, err := keys.Verify(tokenOf(t, seed), now, tandem.AudienceRealtime)
		wantUnknownKey(t, err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d fetches for 20 unknown keys within MinInterval, want 1", n)
	}
	// The fetch still brought the published key.
	if _, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify a token of the published key: %v", err)
	}

	clock.Advance(59 * time.Second)
	_, err := keys.Verify(tokenOf(t, 120), now, tandem.AudienceRealtime)
	wantUnknownKey(t, err)
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d fetches before MinInterval passed, want 1", n)
	}
	clock.Advance(time.Second)
	_, err = keys.Verify(tokenOf(t, 121), now, tandem.AudienceRealtime)
	wantUnknownKey(t, err)
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d fetches once MinInterval passed, want 2", n)
	}
}

func TestRemoteKeySetFetchesNothingForATokenThatNamesNoKey(t *testing.T) {
	srv := newJWKSServer(t, 1)
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), Now: func() time.Time { return now }})
	valid := tokenOf(t, 1)
	for _, tok := range []string{
		"",
		"not a token",
		signRaw(keyFromSeed(1), `{"alg":"none","typ":"JWT","kid":"k9"}`, claimsJSON(nil)),
		signRaw(keyFromSeed(1), `{"alg":"EdDSA","typ":"JWT","kid":"k9","jku":"http://evil"}`, claimsJSON(nil)),
		signRaw(keyFromSeed(1), `{"alg":"EdDSA","typ":"JWT","kid":""}`, claimsJSON(nil)),
		"e30." + valid[strings.IndexByte(valid, '.')+1:],
	} {
		if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err == nil {
			t.Errorf("Verify(%q) succeeded", tok)
		}
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d fetches for malformed tokens, want 0", n)
	}
}

func TestRemoteKeySetKeepsItsKeysWhenAFetchFails(t *testing.T) {
	_, pub := pubFromSeed(1)
	srv := newJWKSServer(t, 1)
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher()})
	if err := keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, 1)

	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusInternalServerError, "down"},
		{"not found", http.StatusNotFound, `{"keys":[]}`},
		{"not a JWKS", http.StatusOK, "<html>"},
		{"two entries of one key", http.StatusOK, `{"keys":[` + jwkJSON(pub, nil) + "," + jwkJSON(pub, nil) + `]}`},
		{"too long", http.StatusOK, `{"keys":[],"pad":"` + strings.Repeat("a", token.MaxJWKSBytes) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.fail(tc.status, tc.body)
			if err := keys.Refresh(t.Context()); err == nil {
				t.Fatal("Refresh succeeded, want an error")
			}
			if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
				t.Errorf("Verify after a failed refresh: %v", err)
			}
		})
	}

	// The web server is unreachable.
	srv.Close()
	if err := keys.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh from a closed server succeeded")
	}
	if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify with the web server down: %v", err)
	}
}

func TestRemoteKeySetRefusesWhatTheFetchReturnsUnchecked(t *testing.T) {
	kid, pub := pubFromSeed(1)
	var answer map[string]ed25519.PublicKey
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: func(context.Context) (map[string]ed25519.PublicKey, error) {
		return answer, nil
	}})
	for name, bad := range map[string]map[string]ed25519.PublicKey{
		"short key":    {kid: pub[:16]},
		"empty key id": {"": pub},
	} {
		answer = bad
		if err := keys.Refresh(t.Context()); err == nil {
			t.Errorf("%s: Refresh succeeded, want an error", name)
		}
	}
	answer = map[string]ed25519.PublicKey{kid: pub}
	if err := keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime); err != nil {
		t.Error(err)
	}
}

func TestRemoteKeySetFetchTakesAtMostTimeout(t *testing.T) {
	srv := newJWKSServer(t, 1)
	release := srv.hold() // never answers in time
	defer release()
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), Timeout: 20 * time.Millisecond})
	err := keys.Refresh(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh from a server that does not answer: %v, want a deadline error", err)
	}
}

func TestRemoteKeySetTakesAnEmptySetAsTheWebServerPublishingNoKey(t *testing.T) {
	srv := newJWKSServer(t, 1)
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), Now: func() time.Time { return now }})
	if err := keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, 1)
	if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
		t.Fatal(err)
	}
	// Only keys of another kind: none that can sign a token.
	srv.fail(http.StatusOK, `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`)
	if err := keys.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	_, err := keys.Verify(tok, now, tandem.AudienceRealtime)
	wantUnknownKey(t, err)
}

func wantKeysUnavailable(t *testing.T, err error) {
	t.Helper()
	var terr *tandem.Error
	if !errors.As(err, &terr) || terr.Code != tandem.EUnavailable || terr.Message != token.KeysUnavailableMessage {
		t.Fatalf("Verify error %v, want unavailable: %s", err, token.KeysUnavailableMessage)
	}
	if !terr.Code.Temporary() {
		t.Fatalf("%s is not temporary: the client would give up", terr.Code)
	}
}

func TestRemoteKeySetRefusesAsUnavailableUntilAFetchSucceeds(t *testing.T) {
	srv := newJWKSServer(t, 1)
	srv.fail(http.StatusBadGateway, "web server starting")
	clock := &fakeClock{t: now}
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), MinInterval: time.Minute, Now: clock.Now})
	if keys.Ready() {
		t.Fatal("Ready before any fetch")
	}

	// The fetch the token causes fails: the node cannot tell a good token
	// from a forged one.
	_, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime)
	wantKeysUnavailable(t, err)
	// Within MinInterval no fetch is made, and the answer is the same.
	_, err = keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime)
	wantKeysUnavailable(t, err)
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// A malformed token is refused for what it is: no key would help.
	if _, err := keys.Verify("not a token", now, tandem.AudienceRealtime); tandem.ErrorCodeOf(err) != tandem.EUnauthenticated {
		t.Errorf("Verify a malformed token: %v, want unauthenticated", err)
	}
	if keys.Ready() {
		t.Fatal("Ready after a failed fetch")
	}

	srv.setKeys(1)
	clock.Advance(time.Minute)
	if _, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime); err != nil {
		t.Fatalf("Verify once the web server answers: %v", err)
	}
	if !keys.Ready() {
		t.Error("not Ready after a successful fetch")
	}
	// Now the set is current: a key it does not hold is forged.
	_, err = keys.Verify(tokenOf(t, 9), now, tandem.AudienceRealtime)
	wantUnknownKey(t, err)
}

func TestRemoteKeySetRefusesAsUnavailableWhileItsLastFetchFailed(t *testing.T) {
	srv := newJWKSServer(t, 1)
	clock := &fakeClock{t: now}
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), MinInterval: time.Minute, Now: clock.Now})
	if err := keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The web server rotates to key 2 and then cannot be reached.
	srv.setKeys(1, 2)
	srv.fail(http.StatusServiceUnavailable, "down")
	if err := keys.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded, want an error")
	}
	_, err := keys.Verify(tokenOf(t, 2), now, tandem.AudienceRealtime)
	wantKeysUnavailable(t, err)
	if _, err := keys.Verify(tokenOf(t, 1), now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify a token of a key held: %v", err)
	}
	if !keys.Ready() {
		t.Error("a failed fetch made the set unready; it keeps verifying with the keys it holds")
	}

	srv.setKeys(1, 2)
	if err := keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(tokenOf(t, 2), now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify a token of the new key after the web server is back: %v", err)
	}
	_, err = keys.Verify(tokenOf(t, 9), now, tandem.AudienceRealtime)
	wantUnknownKey(t, err)
}

func TestRemoteKeySetWaitReadyReturnsAfterTheFirstFetch(t *testing.T) {
	srv := newJWKSServer(t, 1)
	release := srv.hold()
	defer release()
	keys := token.NewRemoteKeySet(token.RemoteConfig{Fetch: srv.fetcher(), Refresh: time.Hour})

	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if err := keys.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady before any fetch: %v, want the context's deadline", err)
	}

	runCtx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); keys.Run(runCtx) }()
	defer func() { stop(); <-done }()
	waitFor(t, "Run's first fetch", func() bool { return srv.requests.Load() == 1 })
	release()
	ctx, cancel = context.WithTimeout(t.Context(), deadline)
	defer cancel()
	if err := keys.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if !keys.Ready() {
		t.Error("not Ready after WaitReady")
	}
}

func TestJWKSFetcherFollowsRedirectsOnlyWithinItsOrigin(t *testing.T) {
	_, pub := pubFromSeed(1)
	good := newJWKSServer(t, 1)
	elsewhere := newJWKSServer(t, 2) // a host that would publish its own key
	redirectTo := func(target string) *httptest.Server {
		srv := httptest.NewServer(http.RedirectHandler(target, http.StatusFound))
		t.Cleanup(srv.Close)
		return srv
	}
	tlsSrv := httptest.NewTLSServer(http.RedirectHandler(elsewhere.URL+"/.well-known/jwks.json", http.StatusFound))
	t.Cleanup(tlsSrv.Close)

	// Within the origin: followed.
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/.well-known/jwks.json", http.StatusMovedPermanently)
			return
		}
		good.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(same.Close)
	keys, err := token.JWKSFetcher(same.Client(), same.URL+"/moved")(t.Context())
	if err != nil || len(keys) != 1 || !keys[token.KeyID(pub)].Equal(pub) {
		t.Fatalf("a redirect within the origin: keys %v, %v; want key 1", keys, err)
	}

	for name, tc := range map[string]struct {
		client *http.Client
		url    string
	}{
		"another host":  {http.DefaultClient, redirectTo(elsewhere.URL+"/.well-known/jwks.json").URL + "/.well-known/jwks.json"},
		"https to http": {tlsSrv.Client(), tlsSrv.URL + "/.well-known/jwks.json"},
	} {
		t.Run(name, func(t *testing.T) {
			before := elsewhere.requests.Load()
			keys, err := token.JWKSFetcher(tc.client, tc.url)(t.Context())
			if err == nil || !strings.Contains(err.Error(), "another origin") {
				t.Errorf("keys %v, %v; want a refused redirect", keys, err)
			}
			if n := elsewhere.requests.Load() - before; n != 0 {
				t.Errorf("the other origin got %d requests", n)
			}
		})
	}
	if http.DefaultClient.CheckRedirect != nil {
		t.Error("JWKSFetcher changed the client it was given")
	}
}

// TestRemoteKeySetRefreshSoonFetchesAtOnce: a key source that knows its keys
// changed has them fetched now, not at the next periodic refresh; a fetch in
// flight when it asks (which may have read the old keys) does not count.
func TestRemoteKeySetRefreshSoonFetchesAtOnce(t *testing.T) {
	srv := newJWKSServer(t, 1)
	keys := token.NewRemoteKeySet(token.RemoteConfig{
		Fetch:       srv.fetcher(),
		Refresh:     time.Hour, // only the first refresh and RefreshSoon fetch
		MinInterval: time.Hour,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); keys.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "first fetch", keys.Ready)
	old := tokenOf(t, 1)

	// An unknown-key fetch is in flight, held, when the keys change.
	release := srv.hold()
	verified := make(chan error, 1)
	go func() { _, err := keys.Verify(tokenOf(t, 3), now, tandem.AudienceRealtime); verified <- err }()
	waitFor(t, "the held fetch", func() bool { return srv.requests.Load() >= 2 })
	keys.RefreshSoon()
	keys.RefreshSoon() // one pending request is enough
	srv.setKeys(2)
	release()
	wantUnknownKey(t, <-verified)

	var err error
	waitFor(t, "refusal of the removed key", func() bool {
		_, err = keys.Verify(old, now, tandem.AudienceRealtime)
		return err != nil
	})
	wantUnknownKey(t, err)
	if _, err := keys.Verify(tokenOf(t, 2), now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify a token of the new key: %v", err)
	}
}

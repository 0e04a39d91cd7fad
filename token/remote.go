package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
)

// RemoteConfig configures a RemoteKeySet. Zero durations take the defaults
// named on each field.
type RemoteConfig struct {
	// Fetch returns the public keys tokens may currently be signed with:
	// the web server's JWKS (JWKSFetcher), or in `tandem dev` the service's
	// keys in the same process. Required.
	Fetch func(ctx context.Context) (map[string]ed25519.PublicKey, error)
	// Refresh is the period of the refresh Run does (default 5m).
	Refresh time.Duration
	// MinInterval is the least time between two fetches caused by tokens
	// naming an unknown key (default 10s), so tokens with made-up key ids
	// cannot turn into a flood of requests to the web server.
	MinInterval time.Duration
	// Timeout bounds one fetch (default 5s).
	Timeout time.Duration
	// Logger gets fetch failures and key changes (default: discarded).
	Logger *slog.Logger
	// Now is the clock MinInterval is measured with (default time.Now).
	Now func() time.Time
}

// The defaults of RemoteConfig.
const (
	DefaultRemoteRefresh     = 5 * time.Minute
	DefaultRemoteMinInterval = 10 * time.Second
	DefaultRemoteTimeout     = 5 * time.Second
)

// RemoteKeySet is the key set of a realtime node: public keys fetched from
// the web server that signs the tokens, kept current. It verifies with the
// keys it holds; a token naming a key it does not hold makes it fetch once
// and try again, so a node learns a new signing key from the first token
// signed with it. Run refreshes the keys periodically and replaces the whole
// set, so a key the web server stopped publishing stops verifying. It is
// safe for concurrent use.
//
// A key the set does not hold proves a token forged only when the set is
// known to be current. Until a fetch has succeeded, and while the last one
// failed, such a token is refused as unavailable (temporary) instead of
// unauthenticated: the node cannot tell yet, and the client should try
// again rather than give up.
type RemoteKeySet struct {
	cfg  RemoteConfig
	log  *slog.Logger
	keys KeySet
	// ready is closed when a fetch has succeeded for the first time.
	ready chan struct{}
	// kick holds a RefreshSoon request for Run (one is as good as many).
	kick chan struct{}

	mu sync.Mutex
	// inflight is the fetch under way, nil when none: every caller that
	// needs fresh keys meanwhile waits for it instead of starting another.
	inflight *fetchCall
	// lastUnknown is when the last fetch caused by an unknown key began.
	lastUnknown time.Time
	// loaded is set by the first fetch that succeeds; lastFailed tells
	// whether the latest finished fetch failed.
	loaded, lastFailed bool

	// warnedEmpty is set once an empty set was logged. Only fetch writes
	// it, and fetches run one at a time.
	warnedEmpty bool
}

// fetchCall is one fetch; done closes when the keys it got (if any) are in
// the set.
type fetchCall struct {
	done chan struct{}
	err  error
}

// NewRemoteKeySet returns a RemoteKeySet that holds no keys yet: the first
// token or Run's first refresh fetches them. It panics without cfg.Fetch, a
// programming error.
func NewRemoteKeySet(cfg RemoteConfig) *RemoteKeySet {
	if cfg.Fetch == nil {
		panic("token: RemoteConfig.Fetch is required")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRemoteRefresh
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultRemoteMinInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRemoteTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RemoteKeySet{cfg: cfg, log: log, ready: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// KeysUnavailableMessage is the message of the error Verify returns for a
// token naming a key the set does not hold while the set is not known to
// be current: before the first successful fetch, or after a failed one.
const KeysUnavailableMessage = "token keys are not available yet; retry"

// Ready reports whether a fetch of the keys has succeeded at least once. A
// node is not ready to take connections before: it could verify no token.
// Later failures do not make it unready; the node keeps the keys it holds.
func (r *RemoteKeySet) Ready() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// WaitReady waits until Ready holds, or until ctx ends and returns its
// error.
func (r *RemoteKeySet) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// current reports whether the keys held are known to be the web server's:
// a fetch has succeeded and the latest one did not fail.
func (r *RemoteKeySet) current() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loaded && !r.lastFailed
}

// Verify checks token like KeySet.Verify. When the token names a key the
// set does not hold, it first waits for a fetch of the keys: the one in
// flight, or a new one unless one caused by an unknown key began less than
// MinInterval ago. A failed fetch leaves the keys as they were. If the key
// is still unknown and the set is not known to be current (no fetch has
// succeeded yet, or the latest failed), the error is tandem.EUnavailable
// with the message KeysUnavailableMessage: the token may well be good.
func (r *RemoteKeySet) Verify(token string, now time.Time, audience string) (tandem.Claims, error) {
	// Whether the key was held is read before verifying: read after, a
	// fetch finishing in between would make "unknown key" look like a
	// failure of a held key, and a good token would be refused.
	kid, ok := headerKeyID(token)
	_, known := r.keys.key(kid)
	c, err := r.keys.Verify(token, now, audience)
	if err == nil {
		return c, nil
	}
	// Only a well-formed header naming a key the set lacked is worth a
	// fetch; every other failure stays what it is.
	if !ok || known {
		return c, err
	}
	if r.fetchForUnknownKey() {
		if c, err = r.keys.Verify(token, now, audience); err == nil {
			return c, nil
		}
	}
	if _, known := r.keys.key(kid); !known && !r.current() {
		return tandem.Claims{}, tandem.Errorf(tandem.EUnavailable, KeysUnavailableMessage)
	}
	return c, err
}

// fetchForUnknownKey waits for a fetch, joining the one in flight, and
// reports whether one ran.
func (r *RemoteKeySet) fetchForUnknownKey() bool {
	r.mu.Lock()
	if call := r.inflight; call != nil {
		r.mu.Unlock()
		<-call.done
		return true
	}
	now := r.cfg.Now()
	if !r.lastUnknown.IsZero() && now.Sub(r.lastUnknown) < r.cfg.MinInterval {
		r.mu.Unlock()
		return false
	}
	r.lastUnknown = now
	call := r.startLocked()
	r.mu.Unlock()
	// The token's connection has no context of its own to give; Timeout
	// bounds the wait.
	r.fetch(context.Background(), call, "unknown key")
	return true
}

// Refresh fetches the keys now (or waits for the fetch in flight) and
// replaces the set with them. On failure the set is unchanged and the error
// says why.
func (r *RemoteKeySet) Refresh(ctx context.Context) error {
	r.mu.Lock()
	if call := r.inflight; call != nil {
		r.mu.Unlock()
		select {
		case <-call.done:
			return call.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	call := r.startLocked()
	r.mu.Unlock()
	r.fetch(ctx, call, "refresh")
	return call.err
}

// RefreshSoon asks Run to fetch the keys now, without waiting for it: for
// a key source that learns when the keys change (the cluster's key
// bucket), so a new key verifies and a removed one stops verifying at
// once rather than at the next periodic refresh. Run's fetch starts after
// the call (not joining one in flight, which may have read the old keys).
func (r *RemoteKeySet) RefreshSoon() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run refreshes the keys at once and then every Refresh until ctx ends, and
// when RefreshSoon asks; a failed refresh is retried after MinInterval (or
// Refresh, if shorter) rather than a whole period later. It is the set's
// only goroutine, owned by the caller, and returns when ctx ends.
func (r *RemoteKeySet) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err = r.Refresh(ctx)
		case <-r.kick:
			err = r.refreshAfter(ctx)
		}
		next := r.cfg.Refresh
		if err != nil && ctx.Err() == nil {
			next = min(r.cfg.MinInterval, r.cfg.Refresh)
		}
		t.Reset(next)
	}
}

// refreshAfter is Refresh with a fetch that starts now: it waits for the
// fetch in flight, if any, and then fetches again.
func (r *RemoteKeySet) refreshAfter(ctx context.Context) error {
	for {
		r.mu.Lock()
		call := r.inflight
		if call == nil {
			call = r.startLocked()
			r.mu.Unlock()
			r.fetch(ctx, call, "key source changed")
			return call.err
		}
		r.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *RemoteKeySet) startLocked() *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	r.inflight = call
	return call
}

// fetch runs call in the calling goroutine: fetches, checks and installs
// the keys, then releases the waiters.
func (r *RemoteKeySet) fetch(ctx context.Context, call *fetchCall, reason string) {
	fetchCtx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	keys, err := r.cfg.Fetch(fetchCtx)
	cancel()
	if err == nil {
		err = checkFetchedKeys(keys)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		call.err = ctx.Err() // stopping, not a failure worth a warning
	case err != nil:
		call.err = fmt.Errorf("token keys: %w", err)
		r.log.Warn("fetching the token keys failed; keeping the keys held", "reason", reason, "err", err, "held", len(r.keys.current()))
	default:
		r.install(keys, reason)
	}
	r.mu.Lock()
	r.inflight = nil
	switch {
	case call.err == nil:
		r.lastFailed = false
		if !r.loaded {
			r.loaded = true
			close(r.ready)
		}
	case ctx.Err() == nil:
		// A fetch cut short by the caller says nothing of the web server.
		r.lastFailed = true
	}
	r.mu.Unlock()
	close(call.done)
}

// install replaces the set with keys and logs what changed.
func (r *RemoteKeySet) install(keys map[string]ed25519.PublicKey, reason string) {
	old := r.keys.current()
	r.keys.Replace(keys)
	added, removed := []string{}, []string{}
	for kid := range keys {
		if _, ok := old[kid]; !ok {
			added = append(added, kid)
		}
	}
	for kid := range old {
		if _, ok := keys[kid]; !ok {
			removed = append(removed, kid)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		slices.Sort(added)
		slices.Sort(removed)
		r.log.Info("token keys changed", "reason", reason, "added", added, "removed", removed, "keys", slices.Sorted(maps.Keys(keys)))
	}
	if len(keys) == 0 && (len(removed) > 0 || !r.warnedEmpty) {
		// Once per change, not at every refresh: a web server that has not
		// signed a token yet has no key to publish, but a wrong URL looks
		// the same.
		r.warnedEmpty = true
		r.log.Warn("the key source publishes no Ed25519 keys: every token is refused until it does", "reason", reason)
	}
}

// checkFetchedKeys refuses what KeySet.Replace would panic on. An empty set
// is an answer like any other: a web server that has signed nothing yet
// publishes no key, and then no token can be valid.
func checkFetchedKeys(keys map[string]ed25519.PublicKey) error {
	for kid, pub := range keys {
		if kid == "" || len(pub) != ed25519.PublicKeySize {
			return tandem.Errorf(tandem.EInternal, "the key source returned a key %q of %d bytes, want a key id and %d bytes", kid, len(pub), ed25519.PublicKeySize)
		}
	}
	return nil
}

// headerKeyID returns the kid of token's header if the header is exactly
// the one Signer writes.
func headerKeyID(token string) (string, bool) {
	if len(token) > maxTokenBytes {
		return "", false
	}
	hdr64, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	hdrJSON, err := decodeSegment(hdr64)
	if err != nil {
		return "", false
	}
	var h header
	if err := json.Unmarshal(hdrJSON, &h); err != nil || h.Kid == "" {
		return "", false
	}
	canonical, err := encodedHeader(h.Kid)
	if err != nil || !bytes.Equal(canonical, hdrJSON) {
		return "", false
	}
	return h.Kid, true
}

// JWKSFetchTimeout bounds one request of a JWKSFetcher.
const JWKSFetchTimeout = 5 * time.Second

// JWKSFetcher returns a RemoteConfig.Fetch that GETs the JWK Set at url
// (the web server's /.well-known/jwks.json) with client (nil:
// http.DefaultClient) and parses it with ParseJWKS. A status other than 200
// or a body over MaxJWKSBytes is an error; one request takes at most
// JWKSFetchTimeout. Redirects are followed only within url's origin
// (scheme, host and port; client's own CheckRedirect, if any, applies
// too): whoever answers decides which tokens the node accepts, so a
// redirect to another host, or from https to http, is an error.
func JWKSFetcher(client *http.Client, url string) func(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	if client == nil {
		client = http.DefaultClient
	}
	// A copy, so the caller's client is left as it was; it shares the
	// caller's transport and its connections.
	c := *client
	c.CheckRedirect = sameOriginRedirects(client.CheckRedirect)
	client = &c
	return func(ctx context.Context) (map[string]ed25519.PublicKey, error) {
		ctx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			// Drain a little so the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		if len(body) > MaxJWKSBytes {
			return nil, fmt.Errorf("GET %s: the document is longer than %d bytes", url, MaxJWKSBytes)
		}
		keys, err := ParseJWKS(body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		return keys, nil
	}
}

// maxRedirects is how many redirects a JWKSFetcher follows, as many as an
// http.Client without a CheckRedirect does.
const maxRedirects = 10

// sameOriginRedirects returns an http.Client.CheckRedirect that refuses a
// redirect away from the origin of the first request, then asks next (nil:
// at most maxRedirects redirects).
func sameOriginRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if from, to := origin(via[0].URL), origin(req.URL); from != to {
			return fmt.Errorf("refusing a redirect from %s to another origin, %s", from, to)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
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

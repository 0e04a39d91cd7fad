package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/token"
)

// newSigner returns a signer under its own key id, as the web server signs.
func newSigner(t *testing.T) *token.Signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return token.NewSigner(token.KeyID(pub), priv)
}

// jwksHandler serves the public keys of signers as a JWK Set, as the web
// server's /.well-known/jwks.json does, and counts its requests.
type jwksHandler struct {
	mu       sync.Mutex
	keys     map[string]ed25519.PublicKey
	requests atomic.Int64
}

func (h *jwksHandler) publish(signers ...*token.Signer) {
	keys := map[string]ed25519.PublicKey{}
	for _, s := range signers {
		keys[s.KeyID()] = s.PublicKey()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = keys
}

func (h *jwksHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if r.URL.Path != "/.well-known/jwks.json" {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	b, err := token.MarshalJWKS(h.keys)
	h.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// startTestNode runs `tandem realtime` with args (plus a free port) the way
// runRealtime does, and closes it at the end of the test.
func startTestNode(t *testing.T, args ...string) *realtimeNode {
	t.Helper()
	var c realtimeConfig
	if err := parse(realtimeFlags(&c, io.Discard), append([]string{"--listen", "127.0.0.1:0"}, args...), nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	verifier, keepCurrent, err := realtimeVerifier(c, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		t.Fatal(err)
	}
	n, err := startRealtime(ln, "test", c.Node, verifier, keepCurrent, Options{}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return n
}

// connect dials the node as the holder of tok and returns the player id the
// node took from it, or the error that refused it.
func connect(t *testing.T, url, tok string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: url, Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.PlayerID(), nil
}

func issue(t *testing.T, s *token.Signer, player string) string {
	t.Helper()
	tok, err := s.Issue(tandem.Player{ID: player}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantBadToken(t *testing.T, err error) {
	t.Helper()
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseBadToken {
		t.Fatalf("connect: %v, want a close with bad_token", err)
	}
}

func TestRealtimeWithJWKSURLVerifiesTokensSignedWithThePublishedKeys(t *testing.T) {
	current, next := newSigner(t), newSigner(t)
	jwks := &jwksHandler{}
	jwks.publish(current)
	srv := httptest.NewServer(jwks)
	t.Cleanup(srv.Close)
	// A minimum interval that never holds a fetch back, so what follows
	// does not depend on how fast the connects run.
	n := startTestNode(t, "--jwks-url", srv.URL+"/.well-known/jwks.json", "--jwks-min-interval", "1ns")

	if got, err := connect(t, n.URL(), issue(t, current, "alice")); err != nil || got != "alice" {
		t.Fatalf("connect with a token of the published key: player %q, %v; want alice", got, err)
	}
	// The web server rotates to a new key: the node learns it from the
	// first token signed with it.
	jwks.publish(current, next)
	if got, err := connect(t, n.URL(), issue(t, next, "bob")); err != nil || got != "bob" {
		t.Fatalf("connect with a token of the new key: player %q, %v; want bob", got, err)
	}
	// A key the web server never published.
	_, err := connect(t, n.URL(), issue(t, newSigner(t), "mallory"))
	wantBadToken(t, err)
}

func TestRealtimeWithTokenKeysVerifiesWithTheKeyFiles(t *testing.T) {
	s := newSigner(t)
	pem, err := token.MarshalPublicKeyPEM(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, "--token-keys", path)
	if got, err := connect(t, n.URL(), issue(t, s, "carol")); err != nil || got != "carol" {
		t.Fatalf("connect: player %q, %v; want carol", got, err)
	}
}

func TestRealtimeTakesExactlyOneKeySource(t *testing.T) {
	for name, args := range map[string][]string{
		"neither":     nil,
		"both":        {"--jwks-url", "http://127.0.0.1:1/.well-known/jwks.json", "--token-keys", "keys.pem"},
		"not a URL":   {"--jwks-url", "127.0.0.1:7700/.well-known/jwks.json"},
		"no interval": {"--jwks-url", "http://127.0.0.1:1/.well-known/jwks.json", "--jwks-refresh", "0s"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), append([]string{"realtime", "--listen", "127.0.0.1:0"}, args...), nil,
				Stdio{Stdout: &stdout, Stderr: &stderr}, Options{})
			if code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr:\n%s", code, &stderr)
			}
			want := "--jwks-url"
			if name == "no interval" {
				want = "--jwks-refresh"
			}
			if !strings.Contains(stderr.String(), want) || (args == nil && !strings.Contains(stderr.String(), "--token-keys")) {
				t.Errorf("stderr does not name %s (and --token-keys when neither is given):\n%s", want, &stderr)
			}
		})
	}
}

func TestDevNodeTakesDevTokensOnlyWithDevTokens(t *testing.T) {
	web, dev := newSigner(t), newSigner(t)
	webKeys := func(context.Context) (map[string]ed25519.PublicKey, error) {
		return map[string]ed25519.PublicKey{web.KeyID(): web.PublicKey()}, nil
	}
	log := slog.New(slog.DiscardHandler)
	cfg := keyRefreshConfig{Refresh: time.Hour, MinInterval: time.Nanosecond}

	tests := []struct {
		name      string
		devKey    *token.Signer
		devTokens bool
	}{
		{"without --dev-tokens", nil, false},
		{"with --dev-tokens", dev, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := remoteKeys(devKeySource(webKeys, tt.devKey), cfg, log)
			if _, err := keys.Verify(issue(t, web, "p1"), time.Now(), tandem.AudienceRealtime); err != nil {
				t.Errorf("a token the web server issued: %v", err)
			}
			_, err := keys.Verify(issue(t, dev, "p2"), time.Now(), tandem.AudienceRealtime)
			if got := err == nil; got != tt.devTokens {
				t.Errorf("a dev token verifies: %v (%v), want %v", got, err, tt.devTokens)
			}
		})
	}
}

func TestDevKeySourceAddsTheDevKeyToAnEmptySet(t *testing.T) {
	dev := newSigner(t)
	fetch := devKeySource(func(context.Context) (map[string]ed25519.PublicKey, error) { return nil, nil }, dev)
	keys, err := fetch(t.Context())
	if err != nil || len(keys) != 1 || !keys[dev.KeyID()].Equal(dev.PublicKey()) {
		t.Errorf("keys %v, %v; want only the dev key", keys, err)
	}
	boom := errors.New("database down")
	fetch = devKeySource(func(context.Context) (map[string]ed25519.PublicKey, error) { return nil, boom }, dev)
	if _, err := fetch(t.Context()); !errors.Is(err, boom) {
		t.Errorf("error %v, want the web keys' error (the node keeps the keys it holds)", err)
	}
}

func TestRealtimeTakesPlainHTTPJWKSOnlyFromThisMachineUnlessInsecure(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://web.example/.well-known/jwks.json", false, true},
		{"http://127.0.0.1:7700/.well-known/jwks.json", false, true},
		{"http://127.1.2.3:7700/.well-known/jwks.json", false, true},
		{"http://[::1]:7700/.well-known/jwks.json", false, true},
		{"http://localhost:7700/.well-known/jwks.json", false, true},
		{"http://LocalHost/.well-known/jwks.json", false, true},
		{"http://web.example/.well-known/jwks.json", false, false},
		{"http://10.0.0.5:7700/.well-known/jwks.json", false, false},
		{"http://localhost.web.example/.well-known/jwks.json", false, false},
		{"http://web.example/.well-known/jwks.json", true, true},
		{"ftp://web.example/.well-known/jwks.json", true, false},
	}
	for _, tt := range tests {
		err := checkJWKSURL(tt.url, tt.insecure)
		if got := err == nil; got != tt.ok {
			t.Errorf("checkJWKSURL(%q, insecure %v): %v, want accepted %v", tt.url, tt.insecure, err, tt.ok)
		}
	}

	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"realtime", "--listen", "127.0.0.1:0", "--jwks-url", "http://web.example/.well-known/jwks.json"}, nil,
		Stdio{Stdout: &stdout, Stderr: &stderr}, Options{})
	if code != 2 || !strings.Contains(stderr.String(), "--jwks-insecure") {
		t.Errorf("plain http to another machine: exit %d, want 2 (usage) naming --jwks-insecure; stderr:\n%s", code, &stderr)
	}
}

// readyz returns the status of the node's /readyz.
func readyz(t *testing.T, n *realtimeNode) int {
	t.Helper()
	resp, err := http.Get("http://" + n.ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRealtimeWithoutKeysIsNotReadyAndRefusesConnectsAsRetryable(t *testing.T) {
	s := newSigner(t)
	jwks := &jwksHandler{}
	jwks.publish(s)
	var webUp atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !webUp.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		jwks.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// Failed fetches are retried every 10ms, so the node learns the keys
	// soon after the web server is up.
	n := startTestNode(t, "--jwks-url", srv.URL+"/.well-known/jwks.json", "--jwks-min-interval", "10ms")

	if got := readyz(t, n); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the keys load: %d, want 503", got)
	}
	_, err := connect(t, n.URL(), issue(t, s, "alice"))
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseNodeDraining || ce.Class() == protocol.ClassFinal {
		t.Fatalf("connect before the keys load: %v, want a close with node_draining (try again)", err)
	}
	if se := ce.Server; se == nil || se.Code != uint32(tandem.EUnavailable) || !se.Temporary {
		t.Errorf("error before the close: %+v, want a temporary unavailable", se)
	}

	webUp.Store(true)
	end := time.Now().Add(10 * time.Second)
	for readyz(t, n) != http.StatusOK {
		if time.Now().After(end) {
			t.Fatal("/readyz not 200 within 10s of the web server answering")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := connect(t, n.URL(), issue(t, s, "alice")); err != nil || got != "alice" {
		t.Fatalf("connect once the keys loaded: player %q, %v; want alice", got, err)
	}
}

func TestWaitForKeysWaitsForTheFirstFetchAtMostTheGivenTime(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	var webUp atomic.Bool
	s := newSigner(t)
	keys := remoteKeys(func(context.Context) (map[string]ed25519.PublicKey, error) {
		if !webUp.Load() {
			return nil, errors.New("connection refused")
		}
		return map[string]ed25519.PublicKey{s.KeyID(): s.PublicKey()}, nil
	}, keyRefreshConfig{Refresh: time.Hour, MinInterval: time.Millisecond}, log)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); keys.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	if waitForKeys(t.Context(), keys, 20*time.Millisecond, "--jwks-url", log) {
		t.Fatal("waitForKeys reported keys while the web server is down")
	}
	webUp.Store(true)
	if !waitForKeys(t.Context(), keys, 10*time.Second, "--jwks-url", log) {
		t.Fatal("waitForKeys gave up with the web server up")
	}
}

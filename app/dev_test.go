package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/token"
)

var natsURLLine = regexp.MustCompile(`(?m)^nats: +(nats://\S+)$`)

// TestDevStopsWhenItsNodeDrains: a drain command to the node of tandem dev
// stops the whole process, with status 0 and the reason, instead of a web
// server left handing out the URL of a node that is gone.
func TestDevStopsWhenItsNodeDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := new(lockedBuffer), new(lockedBuffer)
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dev", "--data-dir", t.TempDir(), "--web-listen", "127.0.0.1:0",
			"--realtime-listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--drain-timeout", "1s"},
			nil, Stdio{Stdout: stdout, Stderr: stderr}, Options{})
	}()
	p := &program{stdout: stdout, stderr: stderr}
	natsURL := p.waitLine(t, natsURLLine)

	bus, err := natsbus.Connect(t.Context(), natsbus.Config{URL: natsURL, Name: t.Name(), RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	cmd := tandem.Command{ID: "drain-dev", Node: "dev", Kind: tandem.CommandDrain, CreatedAt: time.Now()}
	eventually(t, "the drain command delivered", func() bool {
		res, err := bus.SendCommand(t.Context(), cmd)
		return err == nil && res.OK
	})
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("tandem dev exited %d after a drain command, want 0\n%s", code, stderr)
		}
	case <-time.After(clusterDeadline):
		cancel()
		<-done
		t.Fatalf("tandem dev still running %s after its node drained\n%s", clusterDeadline, stderr)
	}
	if want := "the node drained (a drain command); tandem dev stops"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
}

func TestDevRefusesANATSListenAddressOtherThanLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:4222", ":4222", "192.0.2.1:4222", "nats.example:4222", "4222"} {
		t.Run(addr, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"dev", "--data-dir", t.TempDir(), "--nats-listen", addr}, nil,
				Stdio{Stdout: &stdout, Stderr: &stderr}, Options{})
			if code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr:\n%s", code, &stderr)
			}
			why := "no authentication"
			if addr == "4222" {
				why = "not host:port"
			}
			if !strings.Contains(stderr.String(), "--nats-listen") || !strings.Contains(stderr.String(), why) {
				t.Errorf("stderr does not say why --nats-listen is refused:\n%s", &stderr)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		if err := checkNATSListen(addr); err != nil {
			t.Errorf("checkNATSListen(%q): %v, want nil", addr, err)
		}
	}
}

func TestRealtimeRefusesAnAdvertiseURLThatIsNotAWebSocketURL(t *testing.T) {
	for _, u := range []string{"http://node.example/ws", "node.example:7701/ws", "ws:///ws", "wss://"} {
		t.Run(u, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"realtime", "--listen", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1",
				"--advertise-url", u}, nil, Stdio{Stdout: &stdout, Stderr: &stderr}, Options{})
			if code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr:\n%s", code, &stderr)
			}
			if !strings.Contains(stderr.String(), "--advertise-url") {
				t.Errorf("stderr does not name --advertise-url:\n%s", &stderr)
			}
		})
	}
}

// TestBucketKeysFollowTheBucketAtOnce: a node started before any key is
// published is ready as soon as one is, and a key removed from the bucket
// stops verifying at once, not at the next --jwks-refresh.
func TestBucketKeysFollowTheBucketAtOnce(t *testing.T) {
	emb, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	bus, err := natsbus.Connect(t.Context(), natsbus.Config{Server: emb, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	v, run, err := bucketKeys(bus, keyRefreshConfig{Refresh: time.Hour, MinInterval: time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	defer func() { stop(); <-done }()
	keys := v.(*token.RemoteKeySet)

	s1, s2 := newSigner(t), newSigner(t)
	if err := bus.PutKeys(t.Context(), map[string]ed25519.PublicKey{s1.KeyID(): s1.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keys loaded", keys.Ready)
	if _, err := keys.Verify(issue(t, s1, "p1"), time.Now(), tandem.AudienceRealtime); err != nil {
		t.Fatalf("a token of the published key: %v", err)
	}
	if err := bus.PutKeys(t.Context(), map[string]ed25519.PublicKey{s2.KeyID(): s2.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed key refused", func() bool {
		_, err := keys.Verify(issue(t, s1, "p1"), time.Now(), tandem.AudienceRealtime)
		return err != nil
	})
	if _, err := keys.Verify(issue(t, s2, "p2"), time.Now(), tandem.AudienceRealtime); err != nil {
		t.Errorf("a token of the new key: %v", err)
	}
}

// TestDevCtrlCDrainsTheNodeBeforeStoppingTheWebServer: on Ctrl-C the web
// server keeps running while the node drains (the node's key source reads
// its database, and its consumer takes the drain's events), and stops
// once the node returned.
func TestDevCtrlCDrainsTheNodeBeforeStoppingTheWebServer(t *testing.T) {
	ctx, ctrlC := context.WithCancel(t.Context())
	webCtx := make(chan context.Context, 1)
	webStopped := make(chan struct{})
	runWeb := func(ctx context.Context) error {
		webCtx <- ctx
		<-ctx.Done()
		close(webStopped)
		return nil
	}
	webUpWhileDraining := false
	runNode := func(ctx context.Context) error {
		<-ctx.Done()
		webUpWhileDraining = (<-webCtx).Err() == nil
		return nil
	}
	var stderr lockedBuffer
	ctrlC()
	err := runDevPair(ctx, runWeb, runNode, func() bool { return false }, Stdio{Stderr: &stderr})
	if err != nil {
		t.Errorf("runDevPair: %v, want nil", err)
	}
	if !webUpWhileDraining {
		t.Error("the web server stopped before the node drained")
	}
	select {
	case <-webStopped:
	default:
		t.Error("the web server still runs after runDevPair returned")
	}
	if s := stderr.String(); strings.Contains(s, "tandem dev stops") {
		t.Errorf("a Ctrl-C is reported as a server stopping on its own:\n%s", s)
	}
}

// TestDevStopsBothServersWhenEitherStops: a server stopping on its own
// stops the other; a failure makes the result an error, a drain command
// does not.
func TestDevStopsBothServersWhenEitherStops(t *testing.T) {
	failure := errors.New("listener gone")
	untilStopped := func(ctx context.Context) error { <-ctx.Done(); return nil }
	failing := func(context.Context) error { return failure }
	drained := func(context.Context) error { return nil }
	for _, c := range []struct {
		name            string
		runWeb, runNode func(context.Context) error
		commanded       bool
		wantErr         bool
		wantSays        string
	}{
		{"the web server fails", failing, untilStopped, false, true, "the web server stopped (listener gone)"},
		{"the node fails", untilStopped, failing, false, true, "the node stopped (listener gone)"},
		{"the node drains on command", untilStopped, drained, true, false, "the node drained (a drain command)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr lockedBuffer
			err := runDevPair(t.Context(), c.runWeb, c.runNode, func() bool { return c.commanded }, Stdio{Stderr: &stderr})
			if c.wantErr != (err != nil) {
				t.Errorf("runDevPair: %v, want an error %v", err, c.wantErr)
			}
			if c.wantErr && !errors.Is(err, failure) {
				t.Errorf("runDevPair: %v, want the server's failure", err)
			}
			if s := stderr.String(); !strings.Contains(s, c.wantSays) {
				t.Errorf("stderr does not say %q:\n%s", c.wantSays, s)
			}
		})
	}
}

package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/token"
)

// devKeyFile is the dev signing key inside --data-dir. The web server will
// issue tokens itself; until then `tandem dev` and `tandem token` sign with
// this key and the node verifies with its public half.
const devKeyFile = "dev-signing-key.pem"

func loadDevSigner(dataDir string) (*token.Signer, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	return token.LoadOrCreateDevKey(filepath.Join(dataDir, devKeyFile))
}

func runDev(ctx context.Context, args []string, env Env, stdio Stdio, opts Options) error {
	var c devConfig
	if err := parse(devFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	log, err := observe.NewLogger(stdio.Stderr, c.Node.LogLevel)
	if err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	signer, err := loadDevSigner(c.DataDir)
	if err != nil {
		return fmt.Errorf("dev key: %w", err)
	}
	keys := token.NewKeySet(map[string]ed25519.PublicKey{signer.KeyID(): signer.PublicKey()})

	webLn, err := net.Listen("tcp", c.WebListen)
	if err != nil {
		return fmt.Errorf("web listen: %w", err)
	}
	webURL := "http://" + webLn.Addr().String()
	// The dev web origin may open WebSockets, beside the configured ones.
	c.Node.CORSOrigins = append(c.Node.CORSOrigins, webURL)
	node, err := startRealtime(c.RealtimeListen, "dev", c.Node, keys, opts, log)
	if err != nil {
		webLn.Close()
		return err
	}
	web := &http.Server{Handler: devWebHandler(node.URL()), ReadHeaderTimeout: 10 * time.Second}
	webErr := make(chan error, 1)
	go func() { webErr <- web.Serve(webLn) }()

	tok, err := signer.Issue(tandem.Player{ID: "dev-player", Name: "Dev Player"}, time.Now(), tandem.MaxTokenLifetime)
	if err != nil {
		return errors.Join(err, node.close(), web.Close())
	}
	fmt.Fprintf(stdio.Stdout, `tandem dev is running.
web:      %s
realtime: %s
token for player dev-player (valid 10 minutes):
%s
More tokens, one per player: go run ./cmd/tandem token --player alice
`, webURL, node.URL(), tok)

	runErr := node.run(ctx)
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	webShutErr := web.Shutdown(shutCtx)
	if err := <-webErr; !errors.Is(err, http.ErrServerClosed) {
		webShutErr = errors.Join(webShutErr, err)
	}
	return errors.Join(runErr, webShutErr)
}

var devPage = template.Must(template.New("dev").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Tandem dev</title></head>
<body><h1>Tandem dev</h1>
<p>Realtime node: <code>{{.}}</code></p>
<p>Get a token for a player: <code>go run ./cmd/tandem token --player alice</code></p>
<p>The admin UI and the player API arrive with the web server.</p>
</body></html>`))

// devWebHandler is the web side of `tandem dev` until the web server exists.
func devWebHandler(realtimeURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = devPage.Execute(w, realtimeURL)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

func runToken(_ context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c tokenConfig
	if err := parse(tokenFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	if c.PublicKey {
		signer, err := loadDevSigner(c.DataDir)
		if err != nil {
			return fmt.Errorf("dev key: %w", err)
		}
		pem, err := token.MarshalPublicKeyPEM(signer.PublicKey())
		if err != nil {
			return err
		}
		_, err = stdio.Stdout.Write(pem)
		return err
	}
	if c.Player == "" {
		return usageError{errors.New("--player is required")}
	}
	if c.TTL <= 0 || c.TTL > tandem.MaxTokenLifetime {
		return usageError{fmt.Errorf("--ttl must be in (0, %s]", tandem.MaxTokenLifetime)}
	}
	signer, err := loadDevSigner(c.DataDir)
	if err != nil {
		return fmt.Errorf("dev key: %w", err)
	}
	tok, err := signer.Issue(tandem.Player{ID: c.Player, Name: c.Name}, time.Now(), c.TTL)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Stdout, tok)
	return nil
}

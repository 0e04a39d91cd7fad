// Package play owns the browser demo `tandem dev` serves at /play: a small
// multiplayer game on the TypeScript SDK (sdk/ts) and the arena room type.
// The page is index.html; its script and style are built from src/ by
// `npm run build:play` in sdk/ts into dist/, which is committed and
// embedded, so serving the page needs no npm. A test rebuilds the bundle
// and fails when the committed files differ.
package play

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// The page and its built files.
//
//go:embed index.html dist
var files embed.FS

// Path is where the page is served; its files are under Path + "/".
const Path = "/play"

// Config configures the page's Handler.
type Config struct {
	// RealtimeURL is the WebSocket URL logins name (ws:// or wss://). The
	// page's Content-Security-Policy lets it connect to its own origin (the
	// player API) and there, and nowhere else. For a loopback URL any port
	// of that host is allowed, so a test may put a fault proxy in front of
	// the node and point the page at it with ?realtime=ws://….
	RealtimeURL string
}

// file is one file the handler serves.
type file struct {
	name  string
	data  []byte
	etag  string
	ctype string
}

// Handler serves the page at Path and its files at Path/NAME.
type Handler struct {
	csp   string
	page  file
	files map[string]file // by name, under dist/
}

// New returns the page's handler.
func New(cfg Config) (*Handler, error) {
	src, err := connectSource(cfg.RealtimeURL)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		// The web server's policy with connect-src widened to the realtime
		// node: the page's only script is its own file, and it may talk only
		// to this origin and the node.
		csp:   "default-src 'self'; connect-src 'self' " + src + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		files: map[string]file{},
	}
	if h.page, err = load("index.html"); err != nil {
		return nil, err
	}
	err = fs.WalkDir(files, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := load(p)
		if err == nil {
			h.files[f.name] = f
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("play: %w", err)
	}
	return h, nil
}

func load(p string) (file, error) {
	data, err := files.ReadFile(p)
	if err != nil {
		return file{}, fmt.Errorf("play: %w", err)
	}
	sum := sha256.Sum256(data)
	ctype := mime.TypeByExtension(path.Ext(p))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return file{name: path.Base(p), data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}, nil
}

// connectSource is the connect-src source of the realtime URL: its origin,
// or for a loopback host, that host on any port.
func connectSource(realtimeURL string) (string, error) {
	u, err := url.Parse(realtimeURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", fmt.Errorf("play: the realtime URL %q is not a ws:// or wss:// URL", realtimeURL)
	}
	if isLoopback(u.Hostname()) {
		return u.Scheme + "://" + bracketed(u.Hostname()) + ":*", nil
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

func bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// ServeHTTP answers GET and HEAD for the page and its files; anything else
// is not found.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var f file
	switch name, sub := strings.CutPrefix(r.URL.Path, Path+"/"); {
	case r.URL.Path == Path:
		f = h.page
	case sub && h.files[name].data != nil:
		f = h.files[name]
	default:
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	// Revalidated on every load (the names do not change with the
	// content), answered 304 while the ETag matches.
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}

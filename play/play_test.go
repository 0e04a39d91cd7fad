package play_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/play"
)

func TestHandlerServesThePageAndItsFilesWithAPolicyNamingOnlyTheNode(t *testing.T) {
	tests := []struct {
		realtime, connect string
	}{
		{"wss://rt.example.com/ws", "connect-src 'self' wss://rt.example.com;"},
		{"ws://rt.example.com:7701/ws", "connect-src 'self' ws://rt.example.com:7701;"},
		// Loopback: any port of the host, for a fault proxy in front of the node.
		{"ws://127.0.0.1:7701/ws", "connect-src 'self' ws://127.0.0.1:*;"},
		{"ws://[::1]:7701/ws", "connect-src 'self' ws://[::1]:*;"},
	}
	for _, tt := range tests {
		h, err := play.New(play.Config{RealtimeURL: tt.realtime})
		if err != nil {
			t.Fatal(err)
		}
		for path, ctype := range map[string]string{
			"/play":          "text/html; charset=utf-8",
			"/play/play.js":  "text/javascript; charset=utf-8",
			"/play/play.css": "text/css; charset=utf-8",
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ctype || rec.Body.Len() == 0 {
				t.Errorf("GET %s: %d %q, %d bytes; want 200 %q with a body", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len(), ctype)
			}
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self';") || !strings.Contains(csp, tt.connect) {
				t.Errorf("%s: GET %s: Content-Security-Policy %q, want default-src 'self' and %q", tt.realtime, path, csp, tt.connect)
			}
		}
	}
}

func TestHandlerRevalidatesWithTheETag(t *testing.T) {
	h, err := play.New(play.Config{RealtimeURL: "ws://127.0.0.1:7701/ws"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/play/play.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q; want an ETag and no-cache", etag, rec.Header().Get("Cache-Control"))
	}
	req := httptest.NewRequest(http.MethodGet, "/play/play.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("GET with If-None-Match: %d, want 304", rec.Code)
	}
}

func TestHandlerFindsNothingElse(t *testing.T) {
	h, err := play.New(play.Config{RealtimeURL: "ws://127.0.0.1:7701/ws"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/play/", "/play/index.html", "/play/main.ts", "/play/dist/play.js", "/play/../play.go"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
}

func TestNewRefusesARealtimeURLThatIsNotAWebSocket(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:7701/ws", "ws://", "127.0.0.1:7701"} {
		if _, err := play.New(play.Config{RealtimeURL: u}); err == nil {
			t.Errorf("New with realtime URL %q: no error", u)
		}
	}
}

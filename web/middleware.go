package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
)

// requestInfo is what the middleware learns about a request, kept in its
// context: inner steps fill it in, the request's log line reports it.
type requestInfo struct {
	id      string
	address string
	actor   string // "admin:3", "apikey:7"; empty if none
	// err is an internal error answered, for the log line: the client
	// only ever sees "internal error".
	err     error
	maxBody int64
}

// ClientAddress returns the client's address as the server decided it:
// the peer, or behind trusted proxies the first untrusted X-Forwarded-For
// hop from the right.
func ClientAddress(r *http.Request) string {
	if info := infoFrom(r.Context()); info != nil && info.address != "" {
		return info.address
	}
	return peerAddr(r.RemoteAddr).String()
}

// noteError keeps an internal error for the request's log line.
func noteError(r *http.Request, err error) {
	if info := infoFrom(r.Context()); info != nil && tandem.ErrorCodeOf(publicError(err)) == tandem.EInternal {
		info.err = err
	}
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanics answers a panicking handler with a 500 problem and logs the
// panic with its stack; the client never sees either.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "request_id", w.Header().Get("X-Request-Id"),
				"method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			if sw.status != 0 {
				return // the answer has begun; net/http ends it
			}
			internal := tandem.Errorf(tandem.EInternal, "internal error")
			if isAPIPath(r) {
				writeProblem(sw, internal, http.StatusInternalServerError)
			} else {
				http.Error(sw, internal.Message, http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// logRequests gives the request an id (X-Request-Id) and writes one log
// line when it is answered.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: requestID(r)}
		w.Header().Set("X-Request-Id", info.id)
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		completed := false
		defer func() {
			status := sw.status
			switch {
			case !completed:
				status = http.StatusInternalServerError // panicking
			case status == 0:
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			attrs := []slog.Attr{
				slog.String("request_id", info.id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("address", cmp.Or(info.address, peerAddr(r.RemoteAddr).String())),
			}
			if info.actor != "" {
				attrs = append(attrs, slog.String("actor", info.actor))
			}
			if info.err != nil {
				attrs = append(attrs, slog.String("err", info.err.Error()))
			}
			s.log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
		completed = true
	})
}

// requestID keeps a proxy's X-Request-Id when it is a plain token, so logs
// correlate across hops, and makes one otherwise.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if len(id) == 0 || len(id) > 64 || strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}) >= 0 {
		return rand.Text()
	}
	return id
}

// contentSecurityPolicy allows only the server's own scripts, styles and
// images: no inline script or style, no framing, forms post home.
const contentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// securityHeaders sets the headers every response carries. Cache-Control
// defaults to no-store (pages and answers hold private data); asset
// handlers replace it with their long cache lifetime.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// clientAddress decides the client's address once, for the audit log and
// the login throttle.
func (s *Server) clientAddress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			info.address = forwardedFor(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.proxies)
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedFor walks X-Forwarded-For from the right while the hop that
// reported it is a trusted proxy: the first address not a trusted proxy is
// the client. Anything left of it was written by the client and is not
// believed, nor is a header from a peer that is not a trusted proxy.
func forwardedFor(remoteAddr string, headers []string, trusted []netip.Prefix) string {
	addr := peerAddr(remoteAddr)
	if !addr.IsValid() {
		return remoteAddr
	}
	var hops []string
	for _, h := range headers {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && isTrusted(addr, trusted); i-- {
		hop, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			break // garbage from a trusted hop: keep the last address believed
		}
		addr = hop
	}
	return addr.String()
}

func peerAddr(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remoteAddr)
	return a.Unmap()
}

// parseHop reads one X-Forwarded-For entry: an address, with a port or in
// brackets as some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a.Unmap(), err == nil
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Cookies sets and reads the admin UI's two cookies: the session, and the
// device cookie that marks a browser the admin logged in from before (the
// login throttle spares it). Behind TLS both are Secure and carry the
// __Host- prefix, which browsers accept only from a secure origin, for
// Path=/ and without Domain, so no subdomain can plant or shadow them.
type Cookies struct{ Secure bool }

// deviceLifetime is how long a browser stays known to the login throttle.
const deviceLifetime = 365 * 24 * time.Hour

// CookiesFor returns the cookie settings for the server's public URL:
// Secure when it is https.
func CookiesFor(publicURL string) Cookies {
	u, err := url.Parse(publicURL)
	return Cookies{Secure: err == nil && strings.EqualFold(u.Scheme, "https")}
}

func (c Cookies) name(base string) string {
	if c.Secure {
		return "__Host-" + base
	}
	return base
}

func (c Cookies) set(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	seconds := int(maxAge / time.Second)
	if maxAge < 0 {
		seconds = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name:     c.name(name),
		Value:    value,
		Path:     "/",
		MaxAge:   seconds,
		Secure:   c.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

func (c Cookies) get(r *http.Request, name string) string {
	k, err := r.Cookie(c.name(name))
	if err != nil {
		return ""
	}
	return k.Value
}

// SetSession sets the session cookie to token for maxAge.
func (c Cookies) SetSession(w http.ResponseWriter, token string, maxAge time.Duration) {
	c.set(w, "tandem_session", token, maxAge)
}

// ClearSession tells the browser to drop its session cookie.
func (c Cookies) ClearSession(w http.ResponseWriter) { c.set(w, "tandem_session", "", -1) }

// Session returns the session token the browser sent, or "".
func (c Cookies) Session(r *http.Request) string { return c.get(r, "tandem_session") }

// SetDevice sets the device cookie for a year.
func (c Cookies) SetDevice(w http.ResponseWriter, token string) {
	c.set(w, "tandem_device", token, deviceLifetime)
}

// Device returns the device token the browser sent, or "".
func (c Cookies) Device(r *http.Request) string { return c.get(r, "tandem_device") }

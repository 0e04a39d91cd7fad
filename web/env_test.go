package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/servicetest"

	"github.com/pquerna/otp/totp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/sqlite"
	"github.com/tandemhq/tandem/web"
)

// testEnv is a web server on a real service over a real SQLite store.
type testEnv struct {
	t     *testing.T
	store *sqlite.Store
	svc   *service.Service
	clock *servicetest.Clock
	srv   *httptest.Server
	logs  *syncBuffer
	roles map[string]int64 // built-in role ids by name
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a server with the API routes, extra test routes and
// whatever the options change in its Config.
func newEnv(t *testing.T, extra []web.Route, opts ...func(*web.Config)) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	se := servicetest.New(t, func(c *service.Config) { c.Logger = log })
	e := &testEnv{t: t, store: se.Store, svc: se.Service, clock: se.Clock, logs: logs, roles: se.Roles}
	cfg := web.Config{
		Service: e.svc,
		Logger:  log,
		Routes:  append(web.APIRoutes(e.svc, web.Cookies{}), extra...),
		HTMLError: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(tandem.ErrorCodeOf(err).HTTPStatus())
			io.WriteString(w, "<p>error page: "+tandem.ErrorCodeOf(err).String()+"</p>")
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

const testPassword = "correct horse battery"

// createAdmin makes an admin with a built-in or custom role, as the CLI would.
func (e *testEnv) createAdmin(name string, roleID int64) *tandem.Admin {
	e.t.Helper()
	a, err := e.svc.CreateAdmin(context.Background(), service.CLIActor("test"),
		service.NewAdmin{Name: name, Password: testPassword, RoleID: roleID})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// createRole makes a role holding perms, as the CLI would.
func (e *testEnv) createRole(name string, perms ...tandem.Permission) int64 {
	e.t.Helper()
	r, err := e.svc.CreateRole(context.Background(), service.CLIActor("test"),
		service.RoleInput{Name: name, Permissions: perms})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.ID
}

// apiKey makes an API key with the role and returns its secret.
func (e *testEnv) apiKey(name string, roleID int64) (string, *tandem.APIKey) {
	e.t.Helper()
	secret, k, err := e.svc.CreateAPIKey(context.Background(), service.CLIActor("test"),
		service.NewAPIKey{Name: name, RoleID: roleID})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret, k
}

// client is a browser-like client with its own cookie jar that does not
// follow redirects, so tests see them.
func (e *testEnv) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// sessionToken returns the session cookie c holds.
func (e *testEnv) sessionToken(c *http.Client) string {
	u, _ := url.Parse(e.srv.URL)
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == "tandem_session" {
			return k.Value
		}
	}
	return ""
}

// response is an answer read whole.
type response struct {
	*http.Response
	body []byte
}

func (r response) String() string { return r.Status + " " + string(r.body) }

// decode reads a JSON body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
}

// problemBody is the problem+json document.
type problemBody struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail"`
	Code      int                 `json:"code"`
	Temporary bool                `json:"temporary"`
	Errors    []tandem.FieldError `json:"errors"`
}

func (r response) problem(t *testing.T) problemBody {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r)
	}
	var p problemBody
	r.decode(t, &p)
	return p
}

// do sends a request. body is sent as is when a string, else as JSON;
// headers come in name, value pairs.
func (e *testEnv) do(c *http.Client, method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{resp, b}
}

// login logs c in through the API and returns the MFA step outstanding.
func (e *testEnv) login(c *http.Client, name string) string {
	e.t.Helper()
	r := e.do(c, "POST", "/api/admin/v1/session", map[string]string{"name": name, "password": testPassword})
	if r.StatusCode != http.StatusOK {
		e.t.Fatalf("login: %s", r)
	}
	var out struct {
		MFA string `json:"mfa"`
	}
	r.decode(e.t, &out)
	return out.MFA
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r)
	}
}

// enrolMFA enrols the admin of c's session in TOTP through the service,
// as the enrolment page would, and returns the secret. The session has
// passed MFA afterwards.
func (e *testEnv) enrolMFA(c *http.Client) string {
	e.t.Helper()
	ctx := context.Background()
	actor, err := e.svc.Authenticate(ctx, e.sessionToken(c), "127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	enr, err := e.svc.BeginMFAEnrolment(ctx, actor)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.ConfirmMFAEnrolment(ctx, actor, e.totp(enr.Secret)); err != nil {
		e.t.Fatal(err)
	}
	return enr.Secret
}

// totp returns the code of secret at the service's time.
func (e *testEnv) totp(secret string) string {
	e.t.Helper()
	code, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

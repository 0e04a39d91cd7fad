package loadtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The web scenarios load the web operations server (`tandem web`) over
// HTTP/1.1 on loopback, the way scripts/bench-web runs them. Two use the
// admin JSON API:
//   - audit-search: one admin session searches the audit log at a fixed
//     rate with a rotating mix of filters; latency percentiles against the
//     web latency target, and every answer that is not 200.
//   - admin-login: a few workers log in over and over; logins per second
//     (each is one argon2id verification) and how many the hashing pool
//     refused with 429.
// Three use the player API (players.go): player-device-login,
// player-refresh and player-password-login.

// WebScenarios lists the web scenario names.
var WebScenarios = []string{"audit-search", "admin-login", "player-device-login", "player-refresh", "player-password-login"}

// PlayerScenarios lists the web scenarios that use the player API: they
// need no admin.
var PlayerScenarios = []string{"player-device-login", "player-refresh", "player-password-login"}

// Bounds on a web run, so that a typo cannot start an unbounded one.
const (
	MaxWebRate = 5000
	// MaxWebPlayers bounds the pool of devices and sessions.
	MaxWebPlayers = 100_000
	// webMaxInFlight bounds the scheduled requests (audit searches, device
	// logins, refreshes) waiting for an answer; the schedule then runs
	// late, which the send lag shows.
	webMaxInFlight = 512
	// webMaxSendLag is how late (p99) the audit searches may be sent for
	// the run to count as open loop at its rate: well above the lateness
	// of Go's timers (up to about 1 ms), well below a stalled schedule.
	webMaxSendLag     = 5 * time.Millisecond
	webRequestTimeout = 10 * time.Second
	// webDrainLimit bounds the set-up (the first login and sample page) and
	// the wait for the last answers, on top of the warm-up and Duration.
	webDrainLimit = 30 * time.Second
	// webLoggedErrors is how many failed requests are written to Log; the
	// rest are only counted.
	webLoggedErrors = 5
	// webP99 is the web latency target of shared/DESIGN.md (p99 ≤ 20 ms,
	// stated for the player API at 500 req/s), held against the audit
	// search, the device login and the refresh.
	webP99 = 20 * time.Millisecond
	// webRetryPause spaces a login worker's attempts after a refusal, which
	// the server answers at once: without it the worker would spin.
	webRetryPause = 10 * time.Millisecond
	webAPI        = "/api/admin/v1"
)

// WebConfig is one run against the web operations server. Zero values take
// the defaults; a field the scenario does not use is ignored.
type WebConfig struct {
	// URL is the server's http:// URL; its host must be loopback unless
	// AllowRemote. Only the scheme and host are used (the API is at
	// /api/admin/v1), so the `web: http://HOST:PORT/admin` line the server
	// prints will do.
	URL string
	// AllowRemote accepts a URL of any host, http:// or https://
	// (--allow-remote).
	AllowRemote bool
	Scenario    string
	// AdminName and AdminPassword log in (audit-search and admin-login;
	// the player scenarios need no admin). For audit-search the admin's
	// role needs audit:read and must not require MFA (viewer will do).
	AdminName, AdminPassword string
	// Rate is the requests per second of audit-search, player-device-login
	// and player-refresh (default 200, at most MaxWebRate). The load is
	// open loop: each request is sent on its schedule whatever the latency
	// of the ones before (up to webMaxInFlight waiting for an answer), so a
	// slow server cannot hide its slowness by slowing the load; how late
	// the sends were against the schedule is reported and held to
	// webMaxSendLag.
	Rate int
	// Concurrency is the logins in flight of admin-login and
	// player-password-login (default 4); player-password-login registers
	// one account per worker.
	Concurrency int
	// Players is the pool of player-device-login and player-refresh
	// (default 10,000, at most MaxWebPlayers): devices, each logged in once
	// during the set-up, before anything is timed.
	Players int
	// Duration is the measured phase, after a warm-up of a fifth of it (at
	// most a second); default 30s, at most MaxDuration.
	Duration time.Duration
	// ServerPID, if not 0, is the web server's process: its CPU time goes
	// into the report.
	ServerPID int
	// Log receives progress lines and the first failed requests (nil:
	// none).
	Log io.Writer
}

func (c *WebConfig) setDefaults() error {
	if !slices.Contains(WebScenarios, c.Scenario) {
		return fmt.Errorf("unknown web scenario %q: pick one of %s", c.Scenario, strings.Join(WebScenarios, ", "))
	}
	if !slices.Contains(PlayerScenarios, c.Scenario) && (c.AdminName == "" || c.AdminPassword == "") {
		return errors.New("the admin scenarios log in: give the admin's name and password")
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Players == 0 {
		c.Players = 10_000
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Rate < 1 || c.Rate > MaxWebRate {
		return fmt.Errorf("--rate %d is out of range [1, %d]", c.Rate, MaxWebRate)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		return fmt.Errorf("--concurrency %d is out of range [1, %d]", c.Concurrency, MaxConcurrency)
	}
	if c.Players < 1 || c.Players > MaxWebPlayers {
		return fmt.Errorf("--players %d is out of range [1, %d]", c.Players, MaxWebPlayers)
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return fmt.Errorf("--duration %s is out of range (0, %s]", c.Duration, MaxDuration)
	}
	if c.ServerPID < 0 {
		return fmt.Errorf("--server-pid %d is not a process id", c.ServerPID)
	}
	return nil
}

// loopbackHTTPURL checks raw as LoopbackURL does and returns its scheme and
// host only (http://127.0.0.1:PORT). With allowRemote it takes any http://
// or https:// URL with a host.
func loopbackHTTPURL(ctx context.Context, raw string, allowRemote bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", raw, err)
	}
	if allowRemote {
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return "", fmt.Errorf("--url %q: give an http:// or https:// URL with a host", raw)
		}
		return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String(), nil
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("--url %q: the scheme must be http:// (the load tool speaks plain HTTP to a server on this machine)", raw)
	}
	// LoopbackURL is the one place that decides what loopback is; it takes
	// ws:// URLs, so the check runs on the same host under that scheme and
	// its message is given back with the URL that was passed.
	ws := (&url.URL{Scheme: "ws", Host: u.Host}).String()
	checked, err := LoopbackURL(ctx, ws)
	if err != nil {
		return "", errors.New(strings.ReplaceAll(err.Error(), strconv.Quote(ws), strconv.Quote(raw)))
	}
	return "http" + strings.TrimPrefix(checked, "ws"), nil
}

// RunWeb runs one web scenario and returns its report. The run ends by
// itself: within the warm-up, Duration and a bounded set-up and drain, or
// when ctx ends. A bad WebConfig is a *ConfigError.
func RunWeb(ctx context.Context, cfg WebConfig) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, &ConfigError{err}
	}
	base, err := loopbackHTTPURL(ctx, cfg.URL, cfg.AllowRemote)
	if err != nil {
		return nil, &ConfigError{err}
	}
	conns := cfg.Concurrency
	if openLoopScenario(cfg.Scenario) {
		conns = webMaxInFlight
	}
	if err := raiseFileLimit(conns + 64); err != nil {
		return nil, err
	}
	if cfg.ServerPID != 0 {
		if _, err := readProc(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
	}
	warm := min(time.Second, cfg.Duration/5)
	ctx, cancel := context.WithTimeout(ctx, warm+cfg.Duration+webDrainLimit+webSetupLimit(cfg))
	defer cancel()
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	w := &webRunner{
		cfg:  cfg,
		base: base,
		warm: warm,
		client: &http.Client{
			Transport: tr,
			Timeout:   webRequestTimeout,
			// An API answer is never a redirect; one is reported as it is.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		failures: webFailures{answers: map[webAnswer]int{}},
	}
	w.failures.log = w.logf
	switch cfg.Scenario {
	case "audit-search":
		return w.auditSearch(ctx)
	case "admin-login":
		return w.adminLogin(ctx)
	case "player-device-login":
		return w.playerDeviceLogin(ctx)
	case "player-refresh":
		return w.playerRefresh(ctx)
	default:
		return w.playerPasswordLogin(ctx)
	}
}

// openLoopScenario reports whether a scenario sends on a schedule (and
// so may have webMaxInFlight requests waiting).
func openLoopScenario(name string) bool {
	return name == "audit-search" || name == "player-device-login" || name == "player-refresh"
}

// webRunner holds what a web run shares.
type webRunner struct {
	cfg      WebConfig
	base     string // http://127.0.0.1:PORT, checked
	warm     time.Duration
	client   *http.Client
	failures webFailures
}

func (w *webRunner) logf(format string, args ...any) {
	if w.cfg.Log != nil {
		fmt.Fprintf(w.cfg.Log, "loadtest: "+format+"\n", args...)
	}
}

func (w *webRunner) newReport(setup string) *Report {
	return &Report{Scenario: w.cfg.Scenario, Setup: setup, Codec: "http+json"}
}

// webFailures counts the requests that did not get the expected status:
// by status and error code, and those that got no answer at all. The first
// few are logged.
type webFailures struct {
	mu         sync.Mutex
	answers    map[webAnswer]int
	noResponse int
	logged     int
	log        func(format string, args ...any)
}

// webAnswer is a failed request's status and the error code its
// problem+json body named ("" when it named none).
type webAnswer struct {
	status int
	code   string
}

// errorCode returns the code an error body names: the title of a
// problem+json answer, which is the code's name ("rate_limited").
func errorCode(body []byte) string {
	var p struct {
		Title string `json:"title"`
	}
	if json.Unmarshal(body, &p) != nil || len(p.Title) > 40 {
		return ""
	}
	return p.Title
}

func (f *webFailures) add(what string, status int, body []byte, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.noResponse++
	} else {
		f.answers[webAnswer{status, errorCode(body)}]++
	}
	if f.logged >= webLoggedErrors {
		return
	}
	f.logged++
	if err != nil {
		f.log("%s: %v", what, err)
	} else {
		f.log("%s: HTTP %d: %s", what, status, bytes.TrimSpace(body[:min(len(body), 300)]))
	}
}

// count returns the failed requests with status (every status when status
// is 0) and those without an answer.
func (f *webFailures) count(status int) (n, noResponse int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a, k := range f.answers {
		if status == 0 || a.status == status {
			n += k
		}
	}
	return n, f.noResponse
}

// note adds the answers seen to a report, as "401 unauthenticated ×2,
// 500 internal ×1"; expected names the status the scenario wanted.
func (f *webFailures) note(rep *Report, expected string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.answers) == 0 {
		return
	}
	keys := slices.SortedFunc(maps.Keys(f.answers), func(a, b webAnswer) int {
		return cmp.Or(cmp.Compare(a.status, b.status), strings.Compare(a.code, b.code))
	})
	var parts []string
	for _, a := range keys {
		name := strconv.Itoa(a.status)
		if a.code != "" {
			name += " " + a.code
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", name, f.answers[a]))
	}
	rep.note("answers other than %s: %s (the first %d failures are in the log)", expected, strings.Join(parts, ", "), webLoggedErrors)
}

// webCookies are the cookies the server set, sent back by hand: there is
// one session per worker and no jar to share or lock.
type webCookies struct {
	session, device *http.Cookie
}

func (c *webCookies) take(resp *http.Response) {
	for _, k := range resp.Cookies() {
		// Behind https the names carry the __Host- prefix.
		switch strings.TrimPrefix(k.Name, "__Host-") {
		case "tandem_session":
			c.session = &http.Cookie{Name: k.Name, Value: k.Value}
		case "tandem_device":
			c.device = &http.Cookie{Name: k.Name, Value: k.Value}
		}
	}
}

func (c *webCookies) add(req *http.Request) {
	for _, k := range []*http.Cookie{c.session, c.device} {
		if k != nil && k.Value != "" {
			req.AddCookie(k)
		}
	}
}

// do sends one request and reads the whole answer (so the connection is
// reused), keeping the body when keep is set or the status is not 200.
func (w *webRunner) do(req *http.Request, keep bool) (*http.Response, []byte, error) {
	req.Header.Set("User-Agent", "tandem-loadtest")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if !keep && resp.StatusCode == http.StatusOK {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp, body, err
}

// login posts the admin's name and password, sending the worker's cookies
// (the previous session, which the server then ends, and the device that
// marks a known browser) and taking the new ones.
func (w *webRunner) login(ctx context.Context, c *webCookies) (status int, body []byte, err error) {
	in, _ := json.Marshal(map[string]string{"name": w.cfg.AdminName, "password": w.cfg.AdminPassword})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+webAPI+"/session", bytes.NewReader(in))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	c.add(req)
	resp, body, err := w.do(req, true)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode == http.StatusOK {
		c.take(resp)
	}
	return resp.StatusCode, body, nil
}

// firstLogin logs in once before anything is timed, so that a wrong
// password or a role that cannot search fails the run with the server's
// own words instead of a table of errors.
func (w *webRunner) firstLogin(ctx context.Context) (*webCookies, error) {
	c := new(webCookies)
	status, body, err := w.login(ctx, c)
	if err != nil {
		return nil, hintHTTP(fmt.Errorf("log in as %q: %w", w.cfg.AdminName, err))
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("log in as %q: HTTP %d: %s", w.cfg.AdminName, status, bytes.TrimSpace(body))
	}
	if c.session == nil {
		return nil, fmt.Errorf("log in as %q: the answer set no session cookie", w.cfg.AdminName)
	}
	var out struct {
		MFA string `json:"mfa"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("log in as %q: %w", w.cfg.AdminName, err)
	}
	if out.MFA != "" && w.cfg.Scenario == "audit-search" {
		return nil, fmt.Errorf("log in as %q: the session still needs MFA (%s); use an admin whose role does not require it, such as viewer", w.cfg.AdminName, out.MFA)
	}
	return c, nil
}

// hintHTTP explains a refused connection.
func hintHTTP(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (is `tandem web` listening at --url?)", err)
	}
	return err
}

// auditSample is what the filters are made from: values seen on the
// newest page, so that they select records whatever the log holds.
type auditSample struct {
	actors   []string
	prefixes []string // action prefixes such as "role."
	targets  [][2]string
	newest   time.Time
	next     int64 // the first page's cursor
}

type auditPage struct {
	Records []struct {
		At         time.Time `json:"at"`
		ActorName  string    `json:"actor_name"`
		Action     string    `json:"action"`
		TargetType string    `json:"target_type"`
		TargetID   string    `json:"target_id"`
	} `json:"records"`
	Next int64 `json:"next"`
}

func (w *webRunner) auditRequest(ctx context.Context, c *webCookies, q url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+webAPI+"/audit?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	c.add(req)
	return req, nil
}

func (w *webRunner) sampleAudit(ctx context.Context, c *webCookies) (*auditSample, error) {
	req, err := w.auditRequest(ctx, c, url.Values{"limit": {"1000"}})
	if err != nil {
		return nil, err
	}
	resp, body, err := w.do(req, true)
	if err != nil {
		return nil, fmt.Errorf("read the newest audit records: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the newest audit records: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var page auditPage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("read the newest audit records: %w", err)
	}
	s := &auditSample{next: page.Next, newest: time.Now().UTC()}
	seenT := map[[2]string]bool{}
	for i, r := range page.Records {
		if i == 0 {
			s.newest = r.At
		}
		if r.ActorName != "" && !slices.Contains(s.actors, r.ActorName) {
			s.actors = append(s.actors, r.ActorName)
		}
		if p, _, ok := strings.Cut(r.Action, "."); ok && !slices.Contains(s.prefixes, p+".") {
			s.prefixes = append(s.prefixes, p+".")
		}
		if t := [2]string{r.TargetType, r.TargetID}; t[0] != "" && t[1] != "" && !seenT[t] {
			seenT[t] = true
			s.targets = append(s.targets, t)
		}
	}
	// An empty log still gets every kind of query, matching nothing.
	if len(s.actors) == 0 {
		s.actors = []string{w.cfg.AdminName}
	}
	if len(s.prefixes) == 0 {
		s.prefixes = []string{"role."}
	}
	if len(s.targets) == 0 {
		s.targets = [][2]string{{"admin", "1"}}
	}
	return s, nil
}

// auditKinds names the rotating filters, in the order query uses them.
var auditKinds = []string{"none", "actor", "action prefix", "result=denied", "since/until hour", "before cursor", "target"}

// kindBefore is the paging kind, whose answers move its cursor.
const kindBefore = 5

// query returns the i-th request's filter: the kinds in turn, each kind's
// values in turn, with limit 100 and 50 alternating. cursor is the
// before= of the paging kind, taken from a previous answer.
func (s *auditSample) query(i int, cursor int64) (url.Values, int) {
	kind := i % len(auditKinds)
	turn := i / len(auditKinds)
	q := url.Values{"limit": {[]string{"100", "50"}[i%2]}}
	switch kind {
	case 1:
		q.Set("actor", s.actors[turn%len(s.actors)])
	case 2:
		q.Set("action", s.prefixes[turn%len(s.prefixes)])
	case 3:
		q.Set("result", "denied")
	case 4:
		// An hour, on one of the last 30 days, counted back from the
		// newest record.
		until := s.newest.Add(-time.Duration(turn%30) * 24 * time.Hour).Add(time.Second)
		q.Set("since", until.Add(-time.Hour).Format(time.RFC3339))
		q.Set("until", until.Format(time.RFC3339))
	case kindBefore:
		if cursor > 0 {
			q.Set("before", strconv.FormatInt(cursor, 10))
		}
	case 6:
		t := s.targets[turn%len(s.targets)]
		q.Set("target_type", t[0])
		q.Set("target_id", t[1])
	}
	return q, kind
}

// auditSearch searches the audit log at Rate, open loop, from one session.
func (w *webRunner) auditSearch(ctx context.Context) (*Report, error) {
	cfg := w.cfg
	c, err := w.firstLogin(ctx)
	if err != nil {
		return nil, err
	}
	sample, err := w.sampleAudit(ctx, c)
	if err != nil {
		return nil, err
	}
	rep := w.newReport(fmt.Sprintf("open loop at %d req/s for %s after a %s warm-up, one session (admin %q), filters in turn: %s; limit 100/50",
		cfg.Rate, cfg.Duration, w.warm, cfg.AdminName, strings.Join(auditKinds, ", ")))
	w.logf("audit search at %d req/s for %s after a %s warm-up", cfg.Rate, cfg.Duration, w.warm)

	// The paging kind walks older and older pages, from the newest page's
	// cursor; at the end of the log it starts over.
	var cursor atomic.Int64
	cursor.Store(sample.next)
	run, err := w.openLoop(ctx, func(ctx context.Context, i int) (sentAt, done time.Time, answered bool) {
		q, kind := sample.query(i, cursor.Load())
		req, err := w.auditRequest(ctx, c, q)
		if err != nil {
			w.failures.add("audit search", 0, nil, err)
			return
		}
		sentAt = time.Now()
		resp, body, err := w.do(req, kind == kindBefore)
		done = time.Now()
		switch {
		case err != nil:
			w.failures.add("GET audit?"+q.Encode(), 0, nil, err)
			return sentAt, done, false
		case resp.StatusCode != http.StatusOK:
			w.failures.add("GET audit?"+q.Encode(), resp.StatusCode, body, nil)
		case kind == kindBefore:
			var page auditPage
			if json.Unmarshal(body, &page) == nil {
				if page.Next == 0 {
					page.Next = sample.next
				}
				cursor.Store(page.Next)
			}
		}
		return sentAt, done, true
	})
	if err != nil {
		return nil, err
	}
	run.report(rep, "audit search", &w.failures)
	rep.usageMeasures(run.usage, 0)
	w.failures.note(rep, "200")
	rep.note("failures are counted over the whole run, warm-up included")
	run.notes(rep)
	rep.note("the 20 ms target is shared/DESIGN.md's web p99, stated for the player API at 500 req/s")
	return rep, nil
}

// scheduledRequest is the i-th request of an open-loop run, called in a
// goroutine of its own when it is due. It says when it sent the request
// and when the answer arrived, with answered false when there was none (or
// nothing was sent): such a request has no latency.
type scheduledRequest func(ctx context.Context, i int) (sentAt, done time.Time, answered bool)

// openLoopRun is what an open-loop run measured after its warm-up.
type openLoopRun struct {
	rate     int
	latency  Histogram // from send to answer
	lag      Histogram // from due to send
	sent     int64     // over the whole run, warm-up included
	answered int64     // measured requests that got an answer
	achieved float64   // answered per second of the measured phase
	usage    phase
}

// openLoop calls request at Rate for the warm-up and Duration, on
// schedule whatever the latency of the requests before (up to
// webMaxInFlight waiting), and measures those due after the warm-up.
func (w *webRunner) openLoop(ctx context.Context, request scheduledRequest) (*openLoopRun, error) {
	cfg := w.cfg
	run := &openLoopRun{rate: cfg.Rate}
	var sent, answered atomic.Int64
	var lastDone atomic.Int64 // unix nanos of the last measured answer
	sem := make(chan struct{}, webMaxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	measureFrom := start.Add(w.warm)
	total := w.warm + cfg.Duration
	var u *usage
	timer := time.NewTimer(0)
	defer timer.Stop()
schedule:
	for i := 0; ; i++ {
		// The i-th request is due at start + i/Rate, computed from the start
		// so that timer lateness does not accumulate into a lower rate.
		offset := time.Duration(int64(i) * int64(time.Second) / int64(cfg.Rate))
		if offset >= total {
			break
		}
		due := start.Add(offset)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break schedule
		}
		measured := !due.Before(measureFrom)
		if measured && u == nil {
			u = (&runner{cfg: Config{ServerPID: cfg.ServerPID}}).startUsage()
		}
		sent.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			sentAt, done, ok := request(ctx, i)
			if !measured || !ok {
				return
			}
			run.latency.Record(done.Sub(sentAt))
			run.lag.Record(sentAt.Sub(due))
			answered.Add(1)
			for {
				last := lastDone.Load()
				if done.UnixNano() <= last || lastDone.CompareAndSwap(last, done.UnixNano()) {
					break
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("the run did not finish in time: %w", err)
	}
	if u == nil {
		return nil, errors.New("the run ended before the warm-up did")
	}
	run.usage = u.stop()
	wall := time.Unix(0, lastDone.Load()).Sub(measureFrom)
	if wall <= 0 {
		wall = cfg.Duration
	}
	run.sent, run.answered = sent.Load(), answered.Load()
	run.achieved = float64(run.answered) / wall.Seconds()
	return run, nil
}

// report adds the run's rate, latency (p99 held to webP99), failures and
// send lag to rep, naming the latency after what.
func (run *openLoopRun) report(rep *Report, what string, failures *webFailures) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	failed, noResponse := failures.count(0)
	rep.info("requests sent", float64(run.sent), UnitCount)
	rep.atLeast("requests answered per second", run.achieved, UnitPerSecond, 0.98*float64(run.rate),
		fmt.Sprintf("≥ %s (98%% of --rate)", formatValue(0.98*float64(run.rate), UnitPerSecond)))
	rep.info(what+" p50", us(run.latency.Quantile(0.50)), UnitMicroseconds)
	rep.info(what+" p90", us(run.latency.Quantile(0.90)), UnitMicroseconds)
	rep.info(what+" p95", us(run.latency.Quantile(0.95)), UnitMicroseconds)
	rep.atMost(what+" p99", us(run.latency.Quantile(0.99)), UnitMicroseconds, us(webP99),
		"≤ "+formatValue(us(webP99), UnitMicroseconds))
	rep.info(what+" max", us(run.latency.Max()), UnitMicroseconds)
	rep.info(what+" samples", float64(run.latency.Count()), UnitCount)
	rep.atMost("answers other than 200", float64(failed), UnitCount, 0, "0")
	rep.atMost("requests without an answer", float64(noResponse), UnitCount, 0, "0")
	rep.atMost("send lag p99", us(run.lag.Quantile(0.99)), UnitMicroseconds, us(webMaxSendLag),
		"≤ "+formatValue(us(webMaxSendLag), UnitMicroseconds))
}

// notes explains how the run's latency and send lag are measured.
func (run *openLoopRun) notes(rep *Report) {
	rep.note("latency counts from when each request was sent; send lag is how late that was against the schedule (Go's timers wake up to about 1 ms late; a server that cannot keep up fills the %d requests in flight and the lag grows)", webMaxInFlight)
}

// adminLogin has Concurrency workers log in over and over: each login is
// one argon2id verification on the server.
func (w *webRunner) adminLogin(ctx context.Context) (*Report, error) {
	cfg := w.cfg
	if _, err := w.firstLogin(ctx); err != nil {
		return nil, err
	}
	rep := w.newReport(fmt.Sprintf("%d logins in flight for %s after a %s warm-up, admin %q, each worker keeping its device cookie and replacing its session",
		cfg.Concurrency, cfg.Duration, w.warm, cfg.AdminName))
	w.logf("%d workers logging in for %s after a %s warm-up", cfg.Concurrency, cfg.Duration, w.warm)
	cookies := make([]webCookies, cfg.Concurrency)
	run, err := w.loginLoop(ctx, func(ctx context.Context, worker int) loginOutcome {
		status, body, err := w.login(ctx, &cookies[worker])
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.failures.add("POST session", 0, nil, err)
			}
			return loginFailed
		case status == http.StatusOK:
			return loginOK
		case status == http.StatusTooManyRequests:
			return loginRefused
		}
		w.failures.add("POST session", status, body, nil)
		return loginFailed
	})
	if err != nil {
		return nil, err
	}
	run.report(rep, "logins per second (argon2id verifications)", "refused with 429 (hashing pool full)", &w.failures)
	w.failures.note(rep, "200")
	rep.note("refusals and failures are counted over the whole run, warm-up included")
	return rep, nil
}

// loginOutcome is what one login of a loginLoop worker came to.
type loginOutcome int

const (
	loginOK loginOutcome = iota
	// loginRefused is a 429 of the hashing pool: counted apart.
	loginRefused
	// loginFailed is any other failure, which login counts itself.
	loginFailed
)

// loginLoopRun is what a loginLoop measured after its warm-up.
type loginLoopRun struct {
	latency   Histogram // of the successful logins
	refused   int64     // over the whole run
	perSecond float64   // successful logins per second
	usage     phase
}

// loginLoop has Concurrency workers (numbered from 0) call login over and
// over, closed loop, for the warm-up and Duration; it measures the
// successful logins that started after the warm-up. After a refusal or a
// failure a worker pauses webRetryPause, since the server answers those at
// once.
func (w *webRunner) loginLoop(ctx context.Context, login func(ctx context.Context, worker int) loginOutcome) (*loginLoopRun, error) {
	cfg := w.cfg
	run := new(loginLoopRun)
	var refused atomic.Int64
	var lastDone atomic.Int64
	start := time.Now()
	measureFrom := start.Add(w.warm)
	end := measureFrom.Add(cfg.Duration)
	var u *usage
	var uOnce sync.Once
	var wg sync.WaitGroup
	for worker := range cfg.Concurrency {
		wg.Go(func() {
			for {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				measured := !t0.Before(measureFrom)
				if measured {
					uOnce.Do(func() { u = (&runner{cfg: Config{ServerPID: cfg.ServerPID}}).startUsage() })
				}
				outcome := login(ctx, worker)
				done := time.Now()
				switch outcome {
				case loginOK:
					if measured {
						run.latency.Record(done.Sub(t0))
						for {
							last := lastDone.Load()
							if done.UnixNano() <= last || lastDone.CompareAndSwap(last, done.UnixNano()) {
								break
							}
						}
					}
					continue
				case loginRefused:
					refused.Add(1)
				}
				sleep(ctx, webRetryPause)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("the run did not finish in time: %w", err)
	}
	if u == nil {
		return nil, errors.New("the run ended before the warm-up did")
	}
	run.usage = u.stop()
	wall := time.Unix(0, lastDone.Load()).Sub(measureFrom)
	if wall <= 0 {
		wall = cfg.Duration
	}
	run.refused = refused.Load()
	run.perSecond = float64(run.latency.Count()) / wall.Seconds()
	return run, nil
}

// report adds the logins per second (named perSecond), their latency, the
// refusals (named refusedName), the other failures and the CPU to rep.
func (run *loginLoopRun) report(rep *Report, perSecond, refusedName string, failures *webFailures) {
	failed, noResponse := failures.count(0)
	logins := float64(run.latency.Count())
	rep.info(perSecond, run.perSecond, UnitPerSecond)
	rep.latency("login", &run.latency, 0, 0)
	rep.info(refusedName, float64(run.refused), UnitCount)
	rep.atMost("other failures", float64(failed+noResponse), UnitCount, 0, "0")
	if run.usage.serverMeasure && logins > 0 {
		rep.info("server CPU per login", float64(run.usage.serverCPU)/logins/float64(time.Microsecond), UnitMicroseconds)
	}
	rep.usageMeasures(run.usage, 0)
}

package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/conformance"
)

const (
	defaultMaxScenarios = 4
	defaultLifetime     = 2 * time.Minute
	// startLimit bounds starting a scenario's nodes (an embedded NATS
	// server takes a moment on a loaded machine).
	startLimit = 30 * time.Second
	// stopLimit bounds stopping them.
	stopLimit = 10 * time.Second
	// maxDrain bounds a drain request's timeout_ms.
	maxDrain = time.Minute
	maxBody  = 64 << 10
)

// scenarioName is what a scenario's name may be: a file name in the
// scenarios directory, never a path.
var scenarioName = regexp.MustCompile(`^[A-Za-z0-9_][-A-Za-z0-9_]*$`)

// Config configures a Server.
type Config struct {
	// Scenarios is the directory of the scenario files (conformance/scenarios).
	Scenarios string
	// MaxScenarios is how many scenarios may run at once (default 4).
	MaxScenarios int
	// Lifetime is how long a scenario runs before it stops by itself, in
	// case its driver died without deleting it (default 2 minutes).
	Lifetime time.Duration
	// Logger receives a line per scenario started and stopped; nil
	// discards them.
	Logger *slog.Logger
}

// Server serves the harness API (conformance/README.md, "Harness"): it
// starts a scenario's nodes, issues tokens, runs fault proxies and injects
// faults for a driver that cannot do so in its own process.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	runs     map[string]*run
	starting int
	closed   bool
}

// run is one running scenario.
type run struct {
	id    string
	name  string
	nodes *Nodes
	dir   string // the NATS store, removed at the stop
	timer *time.Timer

	mu      sync.Mutex
	proxies map[proxyKey]*Proxy
	stopped bool

	stopOnce sync.Once
}

type proxyKey struct{ client, node string }

// NewServer returns a server with no scenario running.
func NewServer(cfg Config) *Server {
	if cfg.MaxScenarios <= 0 {
		cfg.MaxScenarios = defaultMaxScenarios
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = defaultLifetime
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), runs: map[string]*run{}}
	s.mux.HandleFunc("POST /scenarios", s.handle(s.startScenario))
	s.mux.HandleFunc("DELETE /scenarios/{id}", s.handle(s.deleteScenario))
	s.mux.HandleFunc("POST /scenarios/{id}/tokens", s.handle(s.issueToken))
	s.mux.HandleFunc("POST /scenarios/{id}/proxies", s.handle(s.startProxy))
	s.mux.HandleFunc("GET /scenarios/{id}/proxies/{client}/{node}", s.handle(s.proxyConnections))
	s.mux.HandleFunc("POST /scenarios/{id}/proxies/{client}/{node}/fault", s.handle(s.applyFault))
	s.mux.HandleFunc("GET /scenarios/{id}/closes", s.handle(s.closes))
	s.mux.HandleFunc("POST /scenarios/{id}/drain", s.handle(s.drain))
	s.mux.HandleFunc("/", s.handle(func(r *http.Request) (int, any, error) {
		return 0, nil, tandem.Errorf(tandem.ENotFound, "no endpoint %s %s", r.Method, r.URL.Path)
	}))
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops every scenario and refuses new ones. It waits for the stops,
// including those a scenario's lifetime started.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	runs := make([]*run, 0, len(s.runs))
	for _, r := range s.runs {
		runs = append(runs, r)
	}
	s.mu.Unlock()
	for _, r := range runs {
		s.stop(r, "harness closed")
	}
}

// ScenarioStarted is the answer to POST /scenarios.
type ScenarioStarted struct {
	ID    string                 `json:"id"`
	Nodes map[string]NodeAddress `json:"nodes"`
}

// NodeAddress is where a node serves: WebSocket and metrics.
type NodeAddress struct {
	URL        string `json:"url"`
	MetricsURL string `json:"metrics_url"`
}

func (s *Server) startScenario(r *http.Request) (int, any, error) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if !scenarioName.MatchString(req.Name) {
		return 0, nil, tandem.Errorf(tandem.EInvalid, "name %q: want a scenario's file name without .json", req.Name)
	}
	sc, err := conformance.LoadFile(filepath.Join(s.cfg.Scenarios, req.Name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, tandem.Errorf(tandem.ENotFound, "no scenario %q in %s", req.Name, s.cfg.Scenarios)
	}
	if err != nil {
		return 0, nil, tandem.Errorf(tandem.EInvalid, "scenario %q does not load: %v", req.Name, err)
	}
	if err := s.reserve(); err != nil {
		return 0, nil, err
	}
	ru, err := s.start(r.Context(), sc)
	if err != nil {
		return 0, nil, err
	}
	out := ScenarioStarted{ID: ru.id, Nodes: map[string]NodeAddress{}}
	for _, id := range ru.nodes.IDs() {
		nd := ru.nodes.Node(id)
		out.Nodes[id] = NodeAddress{URL: nd.URL, MetricsURL: nd.MetricsURL}
	}
	return http.StatusCreated, out, nil
}

// reserve takes a place for a scenario about to start.
func (s *Server) reserve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return tandem.Errorf(tandem.EUnavailable, "the harness is stopping")
	case len(s.runs)+s.starting >= s.cfg.MaxScenarios:
		return tandem.Errorf(tandem.ERateLimited, "%d scenarios are running: delete one first", s.cfg.MaxScenarios)
	}
	s.starting++
	return nil
}

// start starts the scenario's nodes in the place reserve took.
func (s *Server) start(ctx context.Context, sc *conformance.Scenario) (*run, error) {
	ru := &run{name: sc.Name, proxies: map[proxyKey]*Proxy{}}
	var err error
	ru.id, err = newID()
	if err == nil {
		ru.dir, err = os.MkdirTemp("", "tandem-harness-")
	}
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, startLimit)
		ru.nodes, err = StartNodes(sctx, sc, ru.dir)
		cancel()
	}
	s.mu.Lock()
	s.starting--
	closed := s.closed
	if err == nil && !closed {
		s.runs[ru.id] = ru
		ru.timer = time.AfterFunc(s.cfg.Lifetime, func() { s.stop(ru, "lifetime over") })
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		if ru.dir != "" {
			_ = os.RemoveAll(ru.dir)
		}
		return nil, err
	case closed:
		s.teardown(ru)
		return nil, tandem.Errorf(tandem.EUnavailable, "the harness is stopping")
	}
	s.log.Info("scenario started", "id", ru.id, "name", ru.name)
	return ru, nil
}

func (s *Server) deleteScenario(r *http.Request) (int, any, error) {
	ru, err := s.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	s.stop(ru, "deleted")
	return http.StatusNoContent, nil, nil
}

// stop stops ru once; a second caller waits for the first stop to end.
func (s *Server) stop(ru *run, why string) {
	ru.stopOnce.Do(func() {
		s.mu.Lock()
		timer := ru.timer // set under s.mu, maybe after a short lifetime fired
		s.mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
		s.teardown(ru)
		s.mu.Lock()
		delete(s.runs, ru.id)
		s.mu.Unlock()
		s.log.Info("scenario stopped", "id", ru.id, "name", ru.name, "why", why)
	})
}

// teardown closes ru's proxies and nodes and removes its files.
func (s *Server) teardown(ru *run) {
	ru.mu.Lock()
	ru.stopped = true
	proxies := ru.proxies
	ru.proxies = nil
	ru.mu.Unlock()
	for _, px := range proxies {
		_ = px.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopLimit)
	defer cancel()
	if err := ru.nodes.Close(ctx); err != nil {
		s.log.Warn("scenario nodes did not stop cleanly", "id", ru.id, "name", ru.name, "err", err)
	}
	_ = os.RemoveAll(ru.dir)
}

// lookup finds the running scenario the path's {id} names.
func (s *Server) lookup(r *http.Request) (*run, error) {
	id := r.PathValue("id")
	s.mu.Lock()
	ru := s.runs[id]
	s.mu.Unlock()
	if ru == nil {
		return nil, tandem.Errorf(tandem.ENotFound, "no scenario %q is running (deleted, or its lifetime is over)", id)
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.stopped {
		return nil, tandem.Errorf(tandem.ENotFound, "scenario %q is stopping", id)
	}
	return ru, nil
}

// node finds a node of ru by id ("": the first).
func (ru *run) node(id string) (*Node, error) {
	nd := ru.nodes.Node(id)
	if nd == nil {
		return nil, tandem.Errorf(tandem.ENotFound, "scenario %s has no node %q", ru.name, id)
	}
	return nd, nil
}

func (s *Server) issueToken(r *http.Request) (int, any, error) {
	var req struct {
		Player string `json:"player"`
		Kind   string `json:"kind"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	ru, err := s.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	if req.Player == "" {
		return 0, nil, tandem.Errorf(tandem.EInvalid, "player is required")
	}
	tok, err := ru.nodes.Token(req.Player, req.Kind)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"token": tok}, nil
}

func (s *Server) startProxy(r *http.Request) (int, any, error) {
	var req struct {
		Client string `json:"client"`
		Node   string `json:"node"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	ru, err := s.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	if req.Client == "" {
		return 0, nil, tandem.Errorf(tandem.EInvalid, "client is required")
	}
	nd, err := ru.node(req.Node)
	if err != nil {
		return 0, nil, err
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.stopped {
		return 0, nil, tandem.Errorf(tandem.ENotFound, "scenario %q is stopping", ru.id)
	}
	key := proxyKey{req.Client, nd.ID}
	// One proxy per client and node: asking again answers the same one.
	if px := ru.proxies[key]; px != nil {
		return http.StatusOK, map[string]string{"url": px.URL()}, nil
	}
	px, err := NewProxy(nd)
	if err != nil {
		return 0, nil, err
	}
	ru.proxies[key] = px
	return http.StatusCreated, map[string]string{"url": px.URL()}, nil
}

// proxy finds the proxy the path's {client} and {node} name.
func (s *Server) proxy(r *http.Request) (*Proxy, error) {
	ru, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	client, node := r.PathValue("client"), r.PathValue("node")
	ru.mu.Lock()
	px := ru.proxies[proxyKey{client, node}]
	ru.mu.Unlock()
	if px == nil {
		return nil, tandem.Errorf(tandem.ENotFound, "no proxy of client %q in front of node %q: POST /scenarios/%s/proxies first", client, node, ru.id)
	}
	return px, nil
}

func (s *Server) proxyConnections(r *http.Request) (int, any, error) {
	px, err := s.proxy(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]int{"accepted": px.Accepted(), "open": px.Open()}, nil
}

func (s *Server) applyFault(r *http.Request) (int, any, error) {
	var f Fault
	if err := decode(r, &f); err != nil {
		return 0, nil, err
	}
	px, err := s.proxy(r)
	if err != nil {
		return 0, nil, err
	}
	if err := px.Apply(f); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (s *Server) closes(r *http.Request) (int, any, error) {
	ru, err := s.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	nd, err := ru.node(r.URL.Query().Get("node"))
	if err != nil {
		return 0, nil, err
	}
	counts, err := nd.CloseCounts()
	if err != nil {
		return 0, nil, err
	}
	out := make(map[string]int64, len(counts))
	for code, n := range counts {
		out[code] = int64(n)
	}
	return http.StatusOK, out, nil
}

func (s *Server) drain(r *http.Request) (int, any, error) {
	var req struct {
		Node      string `json:"node"`
		TimeoutMS int    `json:"timeout_ms"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout < 0 || timeout > maxDrain {
		return 0, nil, tandem.Errorf(tandem.EInvalid, "timeout_ms %d: want 0 to %d", req.TimeoutMS, maxDrain.Milliseconds())
	}
	ru, err := s.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	nd, err := ru.node(req.Node)
	if err != nil {
		return 0, nil, err
	}
	nd.Drain(r.Context(), timeout)
	return http.StatusNoContent, nil, nil
}

// handle writes what h returns: the value as JSON with the status, or the
// error as {code, message} with the code's HTTP status.
func (s *Server) handle(h func(*http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, v, err := h(r)
		if err != nil {
			code := tandem.ErrorCodeOf(err)
			msg := tandem.ErrorMessageOf(err)
			if code == tandem.EInternal {
				// A test tool on the loopback interface: the driver's
				// author needs the cause more than a safe message.
				msg = err.Error()
				s.log.Error("harness request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			status, v = code.HTTPStatus(), map[string]string{"code": code.String(), "message": msg}
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decode reads a JSON request body into v; an empty body leaves v as it
// is. Unknown fields are refused, as a mistyped field name would otherwise
// pass unnoticed.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return tandem.Errorf(tandem.EInvalid, "request body: %v", err)
	}
	return nil
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// ListenLoopback listens on addr, which must be a loopback address (the
// harness has no authentication: it must not be reachable from elsewhere).
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, tandem.Errorf(tandem.EInvalid, "listen address %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, tandem.Errorf(tandem.EInvalid, "listen address %q: only a loopback address is allowed", addr)
	}
	return net.Listen("tcp", addr)
}

// Serve serves the API on ln until ctx ends, then waits for the requests
// in progress (at most stopLimit) and stops every scenario.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	s := NewServer(cfg)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), stopLimit)
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
		}
		cancel()
		<-errc
	case err = <-errc:
	}
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

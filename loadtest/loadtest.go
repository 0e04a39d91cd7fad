// Package loadtest is `tandem loadtest`: a load client that measures a
// realtime node against the performance targets of shared/DESIGN.md, and
// drives bots through faults for QA. It speaks raw WebSocket frames
// (github.com/gobwas/ws for the handshake, a minimal frame reader for the
// rest), decodes only the replies it waits for, signs its own tokens with
// the dev key, and targets only loopback addresses unless told otherwise
// (AllowRemote). Every scenario is bounded in clients and time and stops by
// itself; its report gives the load process's own CPU time next to the
// results, and the server's RSS and CPU when its process id is known, so
// that a saturated client is visible, and counts the error frames, closes
// and resume outcomes the bots met. With Faults, the bots connect through a
// faultproxy that adds latency, jitter, a bandwidth limit or resets.
//
// With Bots "sdk" (--bots sdk; sdkbots.go) the bots are Go SDK clients
// instead, one client.Client per bot, for connect, broadcast, chat,
// matchmaking and reconnect: they measure what a player of the SDK sees,
// with the raw bots' figures and counts (room messages from RoomMessage
// events, errors from ErrorEvent, closes from Disconnected and Closed,
// resumes from Resumed, Gap and SessionLost). The SDK resumes by itself
// after a reset. idle, echo and resume measure the node at the frame level
// and refuse them.
//
// Scenarios:
//   - idle: N connections, each joined to a relay room (rooms of 10), held
//     idle; the server's RSS growth per connection.
//   - connect: connect + authenticate + join as fast as a bounded number of
//     connections in flight allows; connects per second.
//   - echo: a few clients, each alone in a relay room, send themselves a
//     room_message (DELIVERY_LIST) and a ping; round-trip percentiles.
//   - broadcast: R rooms × P players; one sender per room sends a
//     room_message to all at a rate (or, with rate 0, as fast as the server
//     delivers); frames per second, latency from send to receipt, server CPU.
//   - resume: a member is cut, another sends messages, the member resumes;
//     time to the last replayed message, and that none is lost or doubled.
//   - chat: R rooms × P players, every player sends a room_message to all
//     at a rate; frames per second and latency from send to receipt.
//   - matchmaking: M players in a loop put a ticket in an operator's queue,
//     take the seat of their match with a seated join, wait until the match
//     is done and leave; matches per second, time-to-match percentiles.
//   - reconnect: a storm: in relay rooms, every member but one per room is
//     cut at once (through the fault proxy, or its own socket reset), the
//     remaining member sends messages, and all resume at once; resumes per
//     second and their outcomes (replayed, snapshot, expired).
//
// Five scenarios measure the web server instead (RunWeb, web.go and
// players.go):
//   - audit-search: audit-log searches at a fixed rate (open loop);
//     latency percentiles.
//   - admin-login: logins (one argon2id verification each) with a few in
//     flight; logins per second and how many the hashing pool refused.
//   - player-device-login and player-refresh: guest logins of existing
//     devices, and refreshes of logged-in sessions, at a fixed rate (open
//     loop); latency percentiles against the player API target.
//   - player-password-login: email logins with a few in flight; logins per
//     second.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/token"
)

// Scenarios lists the scenario names, in the order scripts/bench runs them.
var Scenarios = []string{"idle", "connect", "echo", "broadcast", "resume", "chat", "matchmaking", "reconnect"}

// sdkScenarios are the scenarios that run with --bots sdk; the others
// measure the node at the frame level.
var sdkScenarios = []string{"connect", "broadcast", "chat", "matchmaking", "reconnect"}

// Bounds on a run, so that a typo cannot start an unbounded one.
const (
	MaxClients     = 50_000
	MaxRooms       = 10_000
	MaxRoomSize    = 16 // the relay room's seat count (room.RelayMaxPlayers)
	MaxDuration    = 10 * time.Minute
	MaxRate        = 1000
	MaxPayload     = 60_000
	MaxConcurrency = 1024
	MaxIterations  = 10_000
	MaxMissed      = 1000
	MaxWindow      = 1024
	// setupLimit bounds opening the connections and closing them, on top of
	// --duration.
	setupLimit = 3 * time.Minute
)

// Config is one run. Zero values take the scenario's defaults.
type Config struct {
	// URL is the node's WebSocket URL; its host must be loopback unless
	// AllowRemote.
	URL string
	// AllowRemote accepts a URL of any host, ws:// or wss://
	// (--allow-remote): for loading a deployment of one's own elsewhere.
	AllowRemote bool
	Scenario    string
	// Codec is "proto" (binary, the default) or "json".
	Codec string
	// Bots is "raw" (the default: raw frames, decoded only where needed,
	// the benchmark mode) or "sdk": one Go SDK client (sdk/go) per bot, for
	// connect, broadcast, chat, matchmaking and reconnect (--bots).
	Bots string
	// Signer signs the players' tokens (the dev key of --data-dir).
	Signer *token.Signer
	// Clients is the number of connections (idle, connect, echo,
	// matchmaking, reconnect).
	Clients int
	// Rooms and RoomSize shape the broadcast and chat scenarios; RoomSize
	// also groups the idle, connect and reconnect connections.
	Rooms, RoomSize int
	// Duration is the measured phase: idle, how long the connections are
	// held before the server's RSS is read; connect, the longest connecting
	// may take; echo and broadcast, how long they run after a warm-up;
	// resume, the longest the iterations may take.
	Duration time.Duration
	// Rate is the messages per second each broadcast sender, or each chat
	// player, sends; 0 sends as fast as the server delivers (broadcast
	// only: saturation), with Window messages in flight per room.
	Rate   int
	Window int
	// Payload is the data size of each room message, in bytes.
	Payload int
	// Concurrency bounds the connections being opened at once.
	Concurrency int
	// Iterations and Missed shape the resume and reconnect scenarios: cuts
	// (storms), and messages missed per cut.
	Iterations, Missed int
	// Queue is the matchmaking queue of the matchmaking scenario. The
	// operator creates it (tandem web's admin console or API); the
	// scenario fails at once if the node does not know it.
	Queue string
	// Faults, when any is set, puts a faultproxy between the bots and the
	// node.
	Faults Faults
	// ServerPID, if not 0, is the node's process: its RSS and CPU time go
	// into the report.
	ServerPID int
	// Log receives progress lines (nil: none).
	Log io.Writer

	codec protocol.CodecID // from Codec
}

// setDefaults fills the scenario's defaults and checks the bounds.
func (c *Config) setDefaults() error {
	if !slices.Contains(Scenarios, c.Scenario) {
		return fmt.Errorf("unknown scenario %q: pick one of %s", c.Scenario, strings.Join(Scenarios, ", "))
	}
	if c.Signer == nil {
		return errors.New("loadtest: Config.Signer is required")
	}
	switch c.Codec {
	case "", "proto":
		c.Codec, c.codec = "proto", protocol.CodecBinary
	case "json":
		c.codec = protocol.CodecJSON
	default:
		return fmt.Errorf("--codec %q: use proto or json", c.Codec)
	}
	switch c.Bots {
	case "", "raw":
		c.Bots = "raw"
	case "sdk":
		if !slices.Contains(sdkScenarios, c.Scenario) {
			return fmt.Errorf("%s does not run with --bots sdk: it measures the node at the frame level; sdk bots run %s", c.Scenario, strings.Join(sdkScenarios, ", "))
		}
		if c.Scenario == "reconnect" {
			c.Faults.Proxy = true // the SDK bots are cut through the fault proxy
		}
	default:
		return fmt.Errorf("--bots %q: use raw or sdk", c.Bots)
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.RoomSize, 10)
	def(&c.Concurrency, 64)
	def(&c.Payload, 100)
	def(&c.Window, 16)
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	switch c.Scenario {
	case "idle", "connect":
		def(&c.Clients, 10_000)
	case "echo":
		def(&c.Clients, 4)
	case "broadcast":
		if c.Clients != 0 {
			return errors.New("broadcast takes --rooms and --room-size, not --clients")
		}
		def(&c.Rooms, 500)
		c.Clients = c.Rooms * c.RoomSize
	case "resume":
		if c.Clients != 0 {
			return errors.New("resume uses two clients; it takes --iterations and --missed, not --clients")
		}
		c.Clients, c.RoomSize = 2, 2
		def(&c.Iterations, 200)
		def(&c.Missed, 100)
	case "chat":
		if c.Clients != 0 {
			return errors.New("chat takes --rooms and --room-size, not --clients")
		}
		if c.Rate == 0 {
			return errors.New("chat needs --rate of at least 1: the messages each player sends per second")
		}
		def(&c.Rooms, 50)
		c.Clients = c.Rooms * c.RoomSize
	case "matchmaking":
		if c.Queue == "" {
			return errors.New("matchmaking needs --queue: the name of a queue the operator created (see docs/benchmarks.md)")
		}
		def(&c.Clients, 100)
	case "reconnect":
		def(&c.Clients, 1000)
		def(&c.Iterations, 5)
		def(&c.Missed, 10)
	}
	checks := []struct {
		name     string
		v, lo, h int
	}{
		{"--clients", c.Clients, 1, MaxClients},
		{"--room-size", c.RoomSize, 1, MaxRoomSize},
		{"--concurrency", c.Concurrency, 1, MaxConcurrency},
		{"--payload", c.Payload, 16, MaxPayload},
		{"--rate", c.Rate, 0, MaxRate},
		{"--window", c.Window, 1, MaxWindow},
		{"--rooms", c.Rooms, 0, MaxRooms},
		{"--iterations", c.Iterations, 0, MaxIterations},
		{"--missed", c.Missed, 0, MaxMissed},
	}
	for _, k := range checks {
		if k.v < k.lo || k.v > k.h {
			return fmt.Errorf("%s %d is out of range [%d, %d]", k.name, k.v, k.lo, k.h)
		}
	}
	if (c.Scenario == "broadcast" || c.Scenario == "reconnect") && c.RoomSize < 2 {
		return fmt.Errorf("%s needs --room-size of at least 2: a sender and a receiver", c.Scenario)
	}
	if err := c.Faults.check(); err != nil {
		return err
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return fmt.Errorf("--duration %s is out of range (0, %s]", c.Duration, MaxDuration)
	}
	if c.ServerPID < 0 {
		return fmt.Errorf("--server-pid %d is not a process id", c.ServerPID)
	}
	return nil
}

// ConfigError is a Config that cannot be run: a value out of its bounds,
// or a URL that is not loopback.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// runner holds what the scenarios of one run share.
type runner struct {
	cfg    Config
	run    string    // this run's id, in its players' ids
	url    string    // the URL the bots dial: the checked target, or the fault proxy
	base   time.Time // the monotonic clock that payload timestamps count from
	tokens []string  // by client index, signed before anything is timed
	faults *faultRun // nil without faults

	// What the report and the progress line count.
	errors, closes tally
	resumes        tally // the SDK bots' resumes by outcome
	sdkCounts      sdkCounts
	// netDown, while set, holds the SDK bots' dials until it is closed: the
	// network is down for them (reconnect storms).
	netDown atomic.Pointer[chan struct{}]
	botsMu  sync.Mutex
	bots    []*frameCounts // every bot made, for the frame counts
	status  atomic.Pointer[func() string]
}

// Run runs one scenario and returns its report. The run ends by itself:
// within Duration plus a bounded setup and teardown, or when ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, &ConfigError{err}
	}
	url, err := TargetURL(ctx, cfg.URL, cfg.AllowRemote)
	if err != nil {
		return nil, &ConfigError{err}
	}
	var faults *faultRun
	if cfg.Faults.on() {
		if faults, url, err = startFaults(url, cfg.Faults); err != nil {
			return nil, &ConfigError{err}
		}
		defer faults.close()
	}
	if err := raiseFileLimit(cfg.Clients + 64); err != nil {
		return nil, err
	}
	if cfg.ServerPID != 0 {
		if _, err := readProc(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+setupLimit)
	defer cancel()
	r := &runner{cfg: cfg, url: url, base: time.Now(), faults: faults, run: newRunID()}
	if err := r.signTokens(); err != nil {
		return nil, err
	}
	stopProgress := r.startProgress(ctx)
	defer stopProgress()
	var rep *Report
	switch cfg.Scenario {
	case "idle":
		rep, err = r.idle(ctx)
	case "connect":
		rep, err = r.connect(ctx)
	case "echo":
		rep, err = r.echo(ctx)
	case "broadcast":
		rep, err = r.broadcast(ctx)
	case "resume":
		rep, err = r.resume(ctx)
	case "chat":
		rep, err = r.chat(ctx)
	case "matchmaking":
		rep, err = r.matchmaking(ctx)
	case "reconnect":
		rep, err = r.reconnect(ctx)
	}
	if err != nil {
		return nil, hint(err)
	}
	r.addCounts(rep)
	return rep, nil
}

func (r *runner) sdk() bool { return r.cfg.Bots == "sdk" }

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "loadtest: "+format+"\n", args...)
	}
}

func (r *runner) newReport(setup string) *Report {
	if r.faults != nil {
		setup += "; " + r.cfg.Faults.String()
	}
	if r.sdk() {
		setup += "; Go SDK bots (one sdk/go client each)"
	} else {
		setup += "; raw-frame bots"
	}
	return &Report{Scenario: r.cfg.Scenario, Setup: setup, Codec: r.cfg.codec.Codec().Name(), Bots: r.cfg.Bots}
}

// signTokens signs a token for each client, valid for the longest lifetime
// allowed, so that no signing happens in a timed phase.
func (r *runner) signTokens() error {
	r.tokens = make([]string, r.cfg.Clients)
	now := time.Now()
	for i := range r.tokens {
		tok, err := r.cfg.Signer.Issue(tandem.Player{ID: r.playerID(i)}, now, tandem.MaxTokenLifetime)
		if err != nil {
			return fmt.Errorf("sign a token: %w", err)
		}
		r.tokens[i] = tok
	}
	return nil
}

// freshToken signs a new token for client i.
func (r *runner) freshToken(i int) (string, error) {
	return r.cfg.Signer.Issue(tandem.Player{ID: r.playerID(i)}, time.Now(), tandem.MaxTokenLifetime)
}

// openStats is how opening a run's bots went.
type openStats struct {
	latency  *Histogram    // dial → joined, per connection
	failed   int           // connections that did not make it
	firstErr error         // the first failure
	took     time.Duration // from the first dial to the last joined
}

// opened is the outcome of openRooms.
type opened struct {
	openStats
	clients []*client   // the connections that joined, in index order
	perRoom [][]*client // the joined members of each room, creator first
}

// openRooms opens n connections in relay rooms of size members: the first
// member of each room creates it, the others join it by id. At most
// Concurrency connections are being opened at any time; the rooms are
// opened in parallel.
func (r *runner) openRooms(ctx context.Context, n, size int) *opened {
	all := make([]*client, n)
	for i := range all {
		all[i] = r.newClient(i)
	}
	ok, st := r.openGroups(ctx, n, size, func(ctx context.Context, i int, roomID string) (string, error) {
		c := all[i]
		if err := c.open(ctx, r.tokens[i], roomID); err != nil {
			return "", fmt.Errorf("%s: %w", c.player, err)
		}
		return c.roomID, nil
	})
	res := &opened{openStats: st}
	res.clients, res.perRoom = grouped(all, ok, size)
	return res
}

// openGroups opens bots 0…n-1 in rooms of size members: open(ctx, i, "")
// opens the first member of each room, which creates it and returns its
// id, then open(ctx, i, id) the others. At most Concurrency bots are being
// opened at any time; the rooms are opened in parallel. ok says which bots
// made it.
func (r *runner) openGroups(ctx context.Context, n, size int, open func(ctx context.Context, i int, roomID string) (string, error)) (ok []bool, res openStats) {
	ok = make([]bool, n)
	res.latency = new(Histogram)
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		res.failed++
		if res.firstErr == nil {
			res.firstErr = err
		}
	}
	sem := make(chan struct{}, r.cfg.Concurrency)
	openOne := func(i int, roomID string) (string, bool) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			fail(ctx.Err())
			return "", false
		}
		defer func() { <-sem }()
		if err := ctx.Err(); err != nil {
			fail(err)
			return "", false
		}
		t0 := time.Now()
		id, err := open(ctx, i, roomID)
		if err != nil {
			fail(err)
			return "", false
		}
		res.latency.Record(time.Since(t0))
		ok[i] = true
		return id, true
	}
	start := time.Now()
	var wg sync.WaitGroup
	var done atomic.Int64
	for g := 0; g < n; g += size {
		members := min(size, n-g)
		wg.Go(func() {
			roomID, created := openOne(g, "")
			if !created {
				for range members - 1 {
					fail(errors.New("its room was not created"))
				}
				return
			}
			var mwg sync.WaitGroup
			for i := g + 1; i < g+members; i++ {
				mwg.Go(func() { openOne(i, roomID) })
			}
			mwg.Wait()
			if d := done.Add(int64(members)); r.cfg.Log != nil && n >= 1000 && d%int64(max(n/10, 1)) < int64(members) {
				r.logf("%d/%d connections opened", d, n)
			}
		})
	}
	wg.Wait()
	res.took = time.Since(start)
	return ok, res
}

// grouped returns the bots of all that ok says made it, and the same by
// room of size members.
func grouped[B any](all []B, ok []bool, size int) (joined []B, perRoom [][]B) {
	for g := 0; g < len(all); g += size {
		var room []B
		for i := g; i < min(g+size, len(all)); i++ {
			if ok[i] {
				joined = append(joined, all[i])
				room = append(room, all[i])
			}
		}
		perRoom = append(perRoom, room)
	}
	return joined, perRoom
}

// readers runs one reading goroutine per client until closeAll. handle
// sees every frame but pings (answered on the way); an error from it or
// from the connection ends that client's reader and is counted as a lost
// connection unless the run is closing.
type readers struct {
	wg      sync.WaitGroup
	closing atomic.Bool
	lost    atomic.Int64
	mu      sync.Mutex
	lostErr error
}

func (rs *readers) start(c *client, handle func(c *client, v *view) error) {
	rs.wg.Go(func() {
		for {
			v, err := c.next()
			if err == nil {
				err = handle(c, v)
			}
			if err != nil {
				if !rs.closing.Load() {
					c.r.countLost(err)
					rs.mu.Lock()
					if rs.lostErr == nil {
						rs.lostErr = fmt.Errorf("%s: %w", c.player, err)
					}
					rs.mu.Unlock()
					rs.lost.Add(1) // after lostErr: whoever sees a loss finds its error

				}
				return
			}
		}
	})
}

// closeAll closes every client normally: a close frame each (the server
// ends the sessions at once, holding nothing), then the readers read until
// the server's close or a short deadline, then the sockets close.
func closeAll(clients []*client, rs *readers) {
	if rs != nil {
		rs.closing.Store(true)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range clients {
		c.sendClose()
		_ = c.nc.SetReadDeadline(deadline)
	}
	if rs != nil {
		rs.wg.Wait()
	} else {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { c.drain(deadline) })
		}
		wg.Wait()
	}
	for _, c := range clients {
		_ = c.nc.Close()
	}
}

// usage measures the CPU of the load process and of the server over a
// phase.
type usage struct {
	pid      int
	start    time.Time
	self     time.Duration
	server   procSample
	serverE  error
	machine  time.Duration
	machineE error
}

func (r *runner) startUsage() *usage {
	u := &usage{pid: r.cfg.ServerPID, start: time.Now(), self: selfCPU()}
	if u.pid != 0 {
		u.server, u.serverE = readProc(u.pid)
	}
	u.machine, u.machineE = machineBusy()
	return u
}

// phase is the outcome of a usage measurement.
type phase struct {
	wall          time.Duration
	selfCPU       time.Duration
	serverCPU     time.Duration
	serverRSSKiB  int64
	serverMeasure bool
	// otherCPU is the CPU the rest of the machine used: busy time of all
	// processors less the load client's and the server's.
	otherCPU     time.Duration
	otherMeasure bool
}

func (u *usage) stop() phase {
	p := phase{wall: time.Since(u.start), selfCPU: selfCPU() - u.self}
	if u.pid != 0 && u.serverE == nil {
		if s, err := readProc(u.pid); err == nil {
			p.serverCPU, p.serverRSSKiB, p.serverMeasure = s.cpu-u.server.cpu, s.rssKiB, true
		}
	}
	if busy, err := machineBusy(); err == nil && u.machineE == nil && p.serverMeasure {
		p.otherCPU, p.otherMeasure = max(busy-u.machine-p.selfCPU-p.serverCPU, 0), true
	}
	return p
}

func percentOfCore(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * float64(cpu) / float64(wall)
}

// usageMeasures reports the CPU of both processes over a phase; the
// server's is held to maxServer percent of one core when that is not 0.
func (rep *Report) usageMeasures(p phase, maxServer float64) {
	self := percentOfCore(p.selfCPU, p.wall)
	if p.serverMeasure {
		server := percentOfCore(p.serverCPU, p.wall)
		if maxServer > 0 {
			rep.atMost("server CPU", server, UnitPercentCore, maxServer, fmt.Sprintf("≤ %.0f%%", maxServer))
		} else {
			rep.info("server CPU", server, UnitPercentCore)
		}
	} else {
		rep.note("server CPU and RSS not measured: give --server-pid")
	}
	rep.info("load client CPU", self, UnitPercentCore)
	if self >= 90 {
		rep.note("the load client used %.0f%% of a core: it may be what limits these figures", self)
	}
	if p.otherMeasure {
		other := percentOfCore(p.otherCPU, p.wall)
		rep.info("other CPU on the machine", other, UnitPercentCore)
		if other >= 10 {
			rep.note("other processes used %.0f%% of a core during the run: the figures are disturbed", other)
		}
	}
}

// noteFailures adds the failed and lost connections to a report.
func (rep *Report) noteFailures(o *openStats, rs *readers) {
	if o != nil && o.failed > 0 {
		rep.note("%d connections failed to open; first error: %v", o.failed, hint(o.firstErr))
	}
	if rs != nil {
		if n := rs.lost.Load(); n > 0 {
			rs.mu.Lock() // the readers still run: the run closes them after its report
			err := rs.lostErr
			rs.mu.Unlock()
			rep.note("%d connections were lost during the run; first error: %v", n, hint(err))
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

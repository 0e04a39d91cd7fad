package app

import (
	"fmt"
	"io"
	"time"

	"github.com/tandemhq/tandem/token"
)

// This file registers the flags of every subcommand. The same functions
// build the flag sets that parse a command line and the ones commandFlagSets
// renders into docs/config.md, so the reference cannot drift from the code.
// After changing a flag, regenerate the reference:
//
//	go test ./app -run TestConfigDocMatchesFlags -update

// commandFlagSets returns the flag set of every subcommand, in the order of
// docs/config.md, bound to throwaway configurations.
func commandFlagSets() []*flagSet {
	return []*flagSet{
		devFlags(new(devConfig), io.Discard),
		webFlags(new(webCmdConfig), io.Discard),
		realtimeFlags(new(realtimeConfig), io.Discard),
		migrateFlags(new(migrateConfig), io.Discard),
		adminFlags(new(adminConfig), io.Discard),
		auditFlags(new(auditConfig), io.Discard),
		tokenFlags(new(tokenConfig), io.Discard),
		loadtestFlags(new(loadtestConfig), io.Discard),
		versionFlags(io.Discard),
	}
}

// nodeConfig is how a realtime node treats its sessions and rooms; `tandem
// realtime` and the node inside `tandem dev` share it.
type nodeConfig struct {
	CORSOrigins         []string
	MaxFrameBytes       int
	ConnectTimeout      time.Duration
	Heartbeat           time.Duration
	SeatHold            time.Duration
	SendQueue           int
	MsgRate             int
	MsgBurst            int
	ByteRate            int
	MaxRooms            int
	RoomCreatePerMinute int
	FloodRefusals       int
	EmptyRoomTimeout    time.Duration
	DrainTimeout        time.Duration
	ReplayCount         int
	ReplayBytes         int
	LogLevel            string
}

func registerNodeFlags(f *flagSet, c *nodeConfig) {
	registerCORSFlag(f, &c.CORSOrigins)
	f.Int(&c.MaxFrameBytes, "max-frame-bytes", 64<<10,
		"largest WebSocket message accepted, in bytes; a larger one closes the connection with too_large")
	f.Duration(&c.ConnectTimeout, "connect-timeout", 5*time.Second,
		"time a new connection has to send a valid connect frame")
	f.Duration(&c.Heartbeat, "heartbeat", 10*time.Second,
		"interval between pings to each session")
	f.Duration(&c.SeatHold, "seat-hold", 20*time.Second,
		"how long a disconnected player's session and seats are held for a resume")
	f.Int(&c.SendQueue, "send-queue", 1024,
		"frames queued for one session before it is disconnected as a slow consumer")
	f.Int(&c.MsgRate, "msg-rate", 50,
		"messages per second a session may send, sustained")
	f.Int(&c.MsgBurst, "msg-burst", 100,
		"messages a session may send at once above --msg-rate")
	f.Int(&c.ByteRate, "byte-rate", 64<<10,
		"bytes per second a session may send, sustained")
	f.Int(&c.MaxRooms, "max-rooms", 4,
		"rooms one session may be in at the same time")
	f.Int(&c.RoomCreatePerMinute, "room-create-per-minute", 10,
		"rooms one session may create per minute")
	f.Int(&c.FloodRefusals, "flood-refusals", 100,
		"frames refused by a rate limit within 10s that close the connection with policy_violation (0: never)")
	f.Duration(&c.EmptyRoomTimeout, "empty-room-timeout", 30*time.Second,
		"how long a room without players lives before it closes")
	f.Duration(&c.DrainTimeout, "drain-timeout", 30*time.Second,
		"on SIGTERM (or a drain command), how long rooms may run on before the remaining sessions are closed; "+
			"the node then takes up to 10s to close them and up to 10s to publish its last events to the cluster, so a termination grace period should cover all three")
	f.Int(&c.ReplayCount, "replay-count", 1024,
		"messages kept per stream for replay on resume")
	f.Int(&c.ReplayBytes, "replay-bytes", 1<<20,
		"bytes kept per stream for replay on resume")
	f.String(&c.LogLevel, "log-level", "info",
		"least severe log level written: debug, info, warn or error")
}

// keyRefreshConfig is how a realtime node keeps the web server's token keys
// current; `tandem realtime --jwks-url` and the node inside `tandem dev`
// share it.
type keyRefreshConfig struct {
	Refresh     time.Duration
	MinInterval time.Duration
}

func registerKeyRefreshFlags(f *flagSet, c *keyRefreshConfig) {
	f.Duration(&c.Refresh, "jwks-refresh", token.DefaultRemoteRefresh,
		"how often the node fetches the web server's token keys again; a key no longer published stops verifying "+
			"(tandem dev reads them in process)")
	f.Duration(&c.MinInterval, "jwks-min-interval", token.DefaultRemoteMinInterval,
		"least time between two key fetches caused by tokens that name a key the node does not hold")
}

// check refuses durations the key set cannot run with.
func (c keyRefreshConfig) check() error {
	if c.Refresh <= 0 || c.MinInterval <= 0 {
		return fmt.Errorf("--jwks-refresh and --jwks-min-interval must be positive, not %s and %s", c.Refresh, c.MinInterval)
	}
	return nil
}

// realtimeConfig is the configuration of `tandem realtime`.
type realtimeConfig struct {
	Listen       string
	NodeID       string
	JWKSURL      string
	JWKSInsecure bool
	JWKSWait     time.Duration
	Keys         keyRefreshConfig
	TokenKeys    []string
	Node         nodeConfig
	NATS         natsConfig
	Cluster      nodeClusterConfig
}

func realtimeFlags(c *realtimeConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("realtime", stderr)
	f.summary = "Runs a realtime node: WebSocket sessions and rooms, held in memory. " +
		"It verifies realtime tokens with the web server's public keys: from the cluster's key bucket (--nats), " +
		"from --jwks-url, or from fixed key files (--token-keys). With --nats it joins the cluster: " +
		"node registry, room directory, presence, bans, commands and events."
	f.String(&c.Listen, "listen", "127.0.0.1:7701",
		"address to accept WebSocket connections on (host:port; port 0 picks a free one)")
	f.String(&c.NodeID, "node-id", "",
		"this node's id in the cluster; empty picks a new one at start")
	f.String(&c.JWKSURL, "jwks-url", "",
		"URL of the web server's /.well-known/jwks.json: tokens verify with the keys published there, "+
			"fetched again when a token names an unknown key (give this or --token-keys, or neither with --nats: the key bucket); "+
			"https:// unless its host is localhost or a loopback address, or --jwks-insecure is given")
	f.Bool(&c.JWKSInsecure, "jwks-insecure", false,
		"allow an http:// --jwks-url to a host other than localhost or a loopback address: "+
			"whoever can change that answer on the way decides which tokens the node accepts (a private network only)")
	f.Duration(&c.JWKSWait, "jwks-wait", defaultJWKSWait,
		"how long the node waits at start for its first fetch of the token keys before it reports its URL; "+
			"until a fetch succeeds /readyz answers 503 and connects are refused with node_draining (retry)")
	registerKeyRefreshFlags(f, &c.Keys)
	f.StringList(&c.TokenKeys, "token-keys", nil,
		"files of PEM Ed25519 public keys that realtime tokens may be signed with, a fixed set for offline and dev use "+
			"(give this or --jwks-url, or neither with --nats)")
	registerNodeFlags(f, &c.Node)
	registerNATSFlags(f, &c.NATS, true)
	registerNodeClusterFlags(f, &c.Cluster, true)
	return f
}

// devConfig is the configuration of `tandem dev`.
type devConfig struct {
	DataDir        string
	WebListen      string
	RealtimeListen string
	DevTokens      bool
	NATSListen     string
	Keys           keyRefreshConfig
	Web            webConfig
	Node           nodeConfig
	NATS           natsConfig
	Cluster        nodeClusterConfig
}

func devFlags(c *devConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("dev", stderr)
	f.summary = "Runs the web server and one realtime node in one process, on a SQLite database and an audit key in --data-dir; " +
		"the node verifies the tokens the web server issues."
	f.String(&c.DataDir, "data-dir", "./tandem-data",
		"directory for the SQLite database, the audit key, the key encryption key and the dev token signing key (created 0700)")
	registerWebListenFlag(f, &c.WebListen)
	f.String(&c.RealtimeListen, "realtime-listen", "127.0.0.1:7701",
		"address of the realtime node (host:port; port 0 picks a free one)")
	f.Bool(&c.DevTokens, "dev-tokens", false,
		"the node also accepts tokens signed with the dev key of --data-dir (dev-signing-key.pem, created if missing), "+
			"which tandem token and tandem loadtest sign with, and one for dev-player is printed at start")
	f.String(&c.NATSListen, "nats-listen", "",
		"address the embedded NATS server (store in --data-dir/nats) also accepts clients on, such as 127.0.0.1:4223 "+
			"for a second tandem realtime --nats; empty: only this process uses it")
	registerKeyRefreshFlags(f, &c.Keys)
	registerWebFlags(f, &c.Web)
	registerNodeFlags(f, &c.Node)
	registerNATSFlags(f, &c.NATS, false)
	registerNodeClusterFlags(f, &c.Cluster, false)
	return f
}

// tokenConfig is the configuration of `tandem token`.
type tokenConfig struct {
	DataDir   string
	Player    string
	Name      string
	TTL       time.Duration
	PublicKey bool
}

func tokenFlags(c *tokenConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("token", stderr)
	f.summary = "Prints a realtime token signed with the dev key of --data-dir, for trying a node without logging in: " +
		"tandem dev --dev-tokens accepts it, and so does tandem realtime --token-keys given the key's public half (--public-key)."
	f.String(&c.DataDir, "data-dir", "./tandem-data",
		"directory for the SQLite database, the audit key, the key encryption key and the dev token signing key (created 0700)")
	f.String(&c.Player, "player", "",
		"player id the token is for (its sub claim)")
	f.String(&c.Name, "name", "",
		"player name in the token")
	f.Duration(&c.TTL, "ttl", 10*time.Minute,
		"token lifetime, at most 10m")
	f.Bool(&c.PublicKey, "public-key", false,
		"print the dev key's public half (PEM, for tandem realtime --token-keys) instead of a token")
	return f
}

// loadtestConfig is the configuration of `tandem loadtest`.
type loadtestConfig struct {
	URL         string
	DataDir     string
	Scenario    string
	Codec       string
	Bots        string
	Clients     int
	Rooms       int
	RoomSize    int
	Duration    time.Duration
	Rate        int
	Window      int
	Payload     int
	Concurrency int
	Iterations  int
	Missed      int
	ServerPID   int
	JSON        bool
	AllowRemote bool
	Queue       string
	// Faults between the bots and the node.
	Faults     bool
	Latency    time.Duration
	Jitter     time.Duration
	Bandwidth  int
	ResetEvery time.Duration
	// The web scenarios.
	Admin          string
	PasswordStdin  bool
	RequestRate    int
	LoginsInFlight int
	Players        int
}

func loadtestFlags(c *loadtestConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("loadtest", stderr)
	f.summary = "Measures a realtime node or the web server on this machine (loopback only unless --allow-remote) against the performance targets, " +
		"and drives bots through network faults; docs/benchmarks.md explains the scenarios, scripts/bench runs the realtime ones and scripts/bench-web the web ones."
	f.String(&c.URL, "url", "ws://127.0.0.1:7701/ws",
		"WebSocket URL of the node, or for the web scenarios the web server's http:// URL; its host must be or resolve to a loopback address (127.0.0.0/8 or ::1) unless --allow-remote")
	f.Bool(&c.AllowRemote, "allow-remote", false,
		"accept a --url on another host (ws://, wss://, http:// or https://): only for a deployment you run")
	// The same flag as tandem dev's and tandem token's: the load tool signs
	// the players' tokens with the dev key of the node's data directory.
	f.String(&c.DataDir, "data-dir", "./tandem-data",
		"directory for the SQLite database, the audit key, the key encryption key and the dev token signing key (created 0700)")
	f.String(&c.Scenario, "scenario", "echo",
		"idle, connect, echo, broadcast, resume, chat, matchmaking or reconnect (realtime node); audit-search or admin-login (web server's admin API); "+
			"player-device-login, player-refresh or player-password-login (web server's player API)")
	f.String(&c.Codec, "codec", "proto",
		"codec of every connection: proto (binary) or json")
	f.String(&c.Bots, "bots", "raw",
		"raw: bots that speak raw frames and decode only what they wait for (the benchmark); sdk: one Go SDK client (sdk/go) per bot, "+
			"for connect, broadcast, chat, matchmaking and reconnect (which then cuts through the fault proxy and lets the SDK resume)")
	f.Int(&c.Clients, "clients", 0,
		"connections (idle and connect: 10000; echo: 4; matchmaking: 100; reconnect: 1000; 0 takes the scenario's default; at most 50000)")
	f.Int(&c.Rooms, "rooms", 0,
		"broadcast and chat: relay rooms (0 takes 500 for broadcast, 50 for chat; at most 10000)")
	f.Int(&c.RoomSize, "room-size", 10,
		"players per relay room (idle, connect, broadcast, chat and reconnect; at most 16)")
	f.Duration(&c.Duration, "duration", 10*time.Second,
		"measured phase, at most 10m: idle, how long connections are held before the RSS is read; connect, the longest connecting may take; "+
			"echo, broadcast and chat, the run after a warm-up; matchmaking, the run; resume and reconnect, the longest the iterations may take")
	f.Int(&c.Rate, "rate", 20,
		"broadcast: messages per second each room's sender sends (at most 1000); 0 sends as fast as the node delivers (saturation); "+
			"chat: messages per second each player sends (at least 1)")
	f.Int(&c.Window, "window", 16,
		"broadcast with --rate 0: messages in flight per room")
	f.Int(&c.Payload, "payload", 100,
		"bytes of data in each room message (16 to 60000)")
	f.Int(&c.Concurrency, "concurrency", 64,
		"connections being opened at once (at most 1024)")
	f.Int(&c.Iterations, "iterations", 0,
		"resume: how many times a member is cut and resumes (0 takes 200); reconnect: storms (0 takes 5)")
	f.Int(&c.Missed, "missed", 0,
		"resume and reconnect: messages the cut members miss each time (0 takes 100 for resume, 10 for reconnect; at most 1000)")
	f.String(&c.Queue, "queue", "",
		"matchmaking: the queue the players put their tickets in; the operator creates it first (admin console or API), an unknown queue fails the run")
	f.Bool(&c.Faults, "faults", false,
		"put a fault proxy on 127.0.0.1 between the bots and the node even with no fault below (reconnect then cuts through it); any fault below implies it")
	f.Duration(&c.Latency, "latency", 0,
		"fault: delay added to each direction of every connection (at most 10s)")
	f.Duration(&c.Jitter, "jitter", 0,
		"fault: each direction's delay is drawn from --latency ± --jitter, again every 100ms")
	f.Int(&c.Bandwidth, "bandwidth", 0,
		"fault: bytes per second each direction of every connection may carry (0: unlimited; at least 1024)")
	f.Duration(&c.ResetEvery, "reset-every", 0,
		"fault: reset one connection, picked at random, this often (0: never; at least 10ms); raw bots do not resume it but in reconnect, sdk bots resume")
	f.Int(&c.ServerPID, "server-pid", 0,
		"process id of the node: its RSS (/proc/PID/status) and CPU time (/proc/PID/stat) go into the report")
	f.String(&c.Admin, "admin", "",
		"audit-search and admin-login: the admin to log in as (audit-search needs audit:read without MFA, e.g. the viewer role); the player scenarios need none")
	f.Bool(&c.PasswordStdin, "password-stdin", false,
		"read the password from the first line of standard input (tandem admin create generates one without it)")
	f.Int(&c.RequestRate, "request-rate", 200,
		"audit-search, player-device-login and player-refresh: requests per second, sent on schedule whatever the latency (open loop)")
	f.Int(&c.LoginsInFlight, "logins-in-flight", 4,
		"admin-login and player-password-login: logins in flight at once (player-password-login registers one account for each)")
	f.Int(&c.Players, "players", 10000,
		"player-device-login and player-refresh: devices in the pool, each logged in once during the set-up (creating its guest account) "+
			"and then taken in turn (at most 100000)")
	f.Bool(&c.JSON, "json", false,
		"write the report as JSON instead of a table")
	return f
}

func versionFlags(stderr io.Writer) *flagSet {
	f := newFlagSet("version", stderr)
	f.summary = "Prints the program version."
	return f
}

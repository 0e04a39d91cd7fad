package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	mmservice "github.com/tandemhq/tandem/matchmaker/service"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/token"
)

// realtimeNode is a running realtime node: its gateway, its HTTP server and
// the goroutine keeping its token keys current.
type realtimeNode struct {
	gw       *gateway.Gateway
	srv      *http.Server
	ln       net.Listener
	serveErr chan error
	drain    time.Duration
	log      *slog.Logger
	stopKeys context.CancelFunc
	keysDone chan struct{}
	// drainCmd receives a drain command from the cluster: the node drains
	// as on SIGTERM. drainCommanded tells, once run returned, that it did.
	drainCmd       chan struct{}
	drainCommanded bool
	// events is the node's event buffer (nil alone); its goroutine runs
	// until eventsDone, after the gateway closed.
	events     *natsbus.EventBuffer
	stopEvents context.CancelFunc
	eventsDone chan struct{}
}

// startRealtime starts a realtime node serving on ln (it owns ln from now
// on, closing it on failure too) that verifies
// tokens with verifier. keepCurrent, if not nil, is the goroutine that keeps
// the verifier's keys current (RemoteKeySet.Run): the node runs it until it
// closes. cl, if not nil, makes the node a member of the cluster.
func startRealtime(ln net.Listener, nodeID string, nc nodeConfig, verifier gateway.Verifier, keepCurrent func(context.Context), opts Options, log *slog.Logger, cl *nodeCluster) (*realtimeNode, error) {
	if nodeID == "" {
		nodeID = newNodeID()
	}
	reg := observe.NewRegistry()
	drainCmd := make(chan struct{}, 1)
	var events *natsbus.EventBuffer
	if cl != nil {
		events = natsbus.NewEventBuffer(natsbus.EventBufferConfig{
			Stream: cl.bus, Node: nodeID, Size: cl.cfg.EventBuffer, Metrics: observe.NewBus(reg), Logger: log,
			FlushTimeout: eventFlushTimeout,
		})
		// The node's warnings go to the web server as node.log events too.
		log = slog.New(observe.TeeWarnings(log.Handler(), eventLogSink(events)))
	}
	cc := gateway.Config{
		Node:           nodeID,
		Verifier:       verifier,
		RoomTypes:      opts.roomTypes(),
		RPCs:           opts.RPCs,
		Hooks:          opts.Hooks,
		CORSOrigins:    nc.CORSOrigins,
		MaxFrameBytes:  nc.MaxFrameBytes,
		ConnectTimeout: nc.ConnectTimeout,
		Heartbeat:      nc.Heartbeat,
		SeatHold:       nc.SeatHold,
		SendQueue:      nc.SendQueue,
		Limits: gateway.Limits{
			MsgRate:              nc.MsgRate,
			MsgBurst:             nc.MsgBurst,
			ByteRate:             nc.ByteRate,
			MaxRooms:             nc.MaxRooms,
			RoomCreatesPerMinute: nc.RoomCreatePerMinute,
			FloodViolations:      nc.FloodRefusals,
		},
		EmptyRoomTimeout: nc.EmptyRoomTimeout,
		ReplayCount:      nc.ReplayCount,
		ReplayBytes:      nc.ReplayBytes,
		Metrics:          observe.NewRealtime(reg),
		Logger:           log.With("node", nodeID),
		Version:          tandem.Version,
		OnDrainCommand: func() {
			select {
			case drainCmd <- struct{}{}:
			default:
			}
		},
	}
	if cl != nil {
		cc.Cluster = cl.bus
		cc.Events = events
		cc.AdvertiseURL = cl.cfg.AdvertiseURL
		if cc.AdvertiseURL == "" {
			cc.AdvertiseURL = "ws://" + ln.Addr().String() + "/ws"
		}
		cc.HeartbeatInterval = cl.cfg.HeartbeatInterval
		cc.SeatTTL = cl.cfg.SeatTTL
		cc.Matchmaking = mmservice.New(mmservice.Config{
			Node:    nodeID,
			Bus:     cl.bus,
			Cluster: cl.bus,
			Emit: func(e tandem.Event) {
				e.Node = nodeID
				events.Emit(e)
			},
			Metrics:      observe.NewMatchmaking(reg),
			Logger:       log.With("node", nodeID),
			Tick:         cl.cfg.MatchTick,
			ClaimTimeout: cl.cfg.MatchClaimTimeout,
		})
	}
	gw, err := gateway.New(cc)
	if err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", gw)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	// A node whose key set has never loaded can verify no token: it is not
	// ready for a load balancer to send players to.
	keys, _ := verifier.(interface{ Ready() bool })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !gw.Ready():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case keys != nil && !keys.Ready():
			http.Error(w, "token keys not loaded yet", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	n := &realtimeNode{
		gw:       gw,
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		ln:       ln,
		serveErr: make(chan error, 1),
		drain:    nc.DrainTimeout,
		log:      log,
		keysDone: make(chan struct{}),
		drainCmd: drainCmd,
		events:   events,
	}
	// The event buffer publishes from before the gateway's first event to
	// after its last (close stops it after the gateway).
	if events != nil {
		evCtx, stopEvents := context.WithCancel(context.Background())
		n.stopEvents, n.eventsDone = stopEvents, make(chan struct{})
		go func() {
			defer close(n.eventsDone)
			events.Run(evCtx)
		}()
	}
	keysCtx, stopKeys := context.WithCancel(context.Background())
	n.stopKeys = stopKeys
	go func() {
		defer close(n.keysDone)
		if keepCurrent != nil {
			keepCurrent(keysCtx)
		}
	}()
	go func() { n.serveErr <- n.srv.Serve(ln) }()
	return n, nil
}

// newNodeID returns a node id for a node started without --node-id.
func newNodeID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "node-" + hex.EncodeToString(b[:])
}

// closeTimeout bounds closing the gateway and the HTTP server after the
// drain; eventFlushTimeout bounds publishing the node's last events after
// that (the session.closed events of a drain's end, node.down). A clean
// stop takes up to --drain-timeout plus both: the termination grace period
// must cover them, or the last events are lost to a SIGKILL.
const (
	closeTimeout      = 10 * time.Second
	eventFlushTimeout = 10 * time.Second
)

// URL returns the node's WebSocket URL.
func (n *realtimeNode) URL() string { return "ws://" + n.ln.Addr().String() + "/ws" }

// run serves until ctx ends, then drains: no new sessions or rooms, rooms
// run until they end or the drain timeout passes, remaining sessions close
// with node_draining.
func (n *realtimeNode) run(ctx context.Context) error {
	select {
	case err := <-n.serveErr:
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		_ = n.gw.Close(ctx)
		cancel()
		n.stopKeys()
		<-n.keysDone
		n.stopEventBuffer()
		return fmt.Errorf("realtime server: %w", err)
	case <-ctx.Done():
	case <-n.drainCmd:
		n.drainCommanded = true
		n.log.Info("drain command received")
	}
	n.log.Info("draining", "timeout", n.drain.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), n.drain)
	n.gw.Drain(drainCtx)
	cancel()
	return n.close()
}

func (n *realtimeNode) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	gwErr := n.gw.Close(ctx)
	srvErr := n.srv.Shutdown(ctx)
	if err := <-n.serveErr; !errors.Is(err, http.ErrServerClosed) {
		srvErr = errors.Join(srvErr, err)
	}
	// The keys are kept current until no connection can need them.
	n.stopKeys()
	<-n.keysDone
	n.stopEventBuffer()
	return errors.Join(gwErr, srvErr)
}

// stopEventBuffer stops the event buffer's goroutine, which publishes what
// it holds first (bounded by the buffer's own flush timeout).
func (n *realtimeNode) stopEventBuffer() {
	if n.events == nil {
		return
	}
	n.stopEvents()
	<-n.eventsDone
}

func runRealtime(ctx context.Context, args []string, env Env, stdio Stdio, opts Options) error {
	var c realtimeConfig
	if err := parse(realtimeFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	log, err := observe.NewLogger(stdio.Stderr, c.Node.LogLevel)
	if err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	// The id before the connection, which is named after it.
	if c.NodeID == "" {
		c.NodeID = newNodeID()
	}
	var cl *nodeCluster
	if c.NATS.URL != "" {
		if err := c.NATS.check(); err != nil {
			return usageError{err}
		}
		if err := c.Cluster.check(c.NATS); err != nil {
			return usageError{err}
		}
		bus, err := connectBus(ctx, c.NATS, nil, "realtime "+c.NodeID, log)
		if err != nil {
			return err
		}
		defer bus.Close()
		cl = &nodeCluster{bus: bus, cfg: c.Cluster}
	}
	verifier, keepCurrent, err := realtimeVerifier(c, cl, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("realtime listen: %w", err)
	}
	n, err := startRealtime(ln, c.NodeID, c.Node, verifier, keepCurrent, opts, log, cl)
	if err != nil {
		return err
	}
	if keys, ok := verifier.(*token.RemoteKeySet); ok {
		source := "--jwks-url"
		if c.JWKSURL == "" {
			source = "the cluster's key bucket"
		}
		waitForKeys(ctx, keys, c.JWKSWait, source, log)
	}
	fmt.Fprintf(stdio.Stdout, "realtime: %s\n", n.URL())
	return n.run(ctx)
}

// defaultJWKSWait is the default of --jwks-wait.
const defaultJWKSWait = 5 * time.Second

// waitForKeys waits up to wait for the first fetch of the node's token keys
// to succeed, and reports whether it did. The node serves meanwhile (a
// connect waits for the fetch in flight), and after: without keys it
// refuses connects as temporary and /readyz answers 503 until a fetch
// succeeds, so the wait only keeps the node from announcing itself before
// it can verify a token.
//
// source names where the keys come from, for the warning.
func waitForKeys(ctx context.Context, keys *token.RemoteKeySet, wait time.Duration, source string, log *slog.Logger) bool {
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := keys.WaitReady(waitCtx); err != nil {
		if ctx.Err() == nil {
			log.Warn("no token keys yet: connects are refused as unavailable (node_draining) until a fetch of "+source+" succeeds",
				"waited", wait.String())
		}
		return false
	}
	return true
}

// realtimeVerifier returns what `tandem realtime` verifies tokens with: the
// web server's published keys (the cluster's key bucket, or --jwks-url),
// kept current by the returned goroutine, or a fixed set read from
// --token-keys (no goroutine).
func realtimeVerifier(c realtimeConfig, cl *nodeCluster, log *slog.Logger) (gateway.Verifier, func(context.Context), error) {
	if c.JWKSURL == "" && len(c.TokenKeys) == 0 && cl != nil {
		if err := c.Keys.check(); err != nil {
			return nil, nil, usageError{err}
		}
		return bucketKeys(cl.bus, c.Keys, log)
	}
	if (c.JWKSURL == "") == (len(c.TokenKeys) == 0) {
		return nil, nil, usageError{errors.New("give exactly one of --jwks-url (the web server's /.well-known/jwks.json) " +
			"and --token-keys (files of PEM public keys), or --nats alone (the cluster's key bucket): the keys realtime tokens are signed with")}
	}
	if len(c.TokenKeys) > 0 {
		pubs, err := token.LoadPublicKeyFiles(c.TokenKeys...)
		if err != nil {
			return nil, nil, err
		}
		return token.NewKeySet(pubs), nil, nil
	}
	if err := checkJWKSURL(c.JWKSURL, c.JWKSInsecure); err != nil {
		return nil, nil, usageError{err}
	}
	if err := c.Keys.check(); err != nil {
		return nil, nil, usageError{err}
	}
	if c.JWKSWait < 0 {
		return nil, nil, usageError{fmt.Errorf("--jwks-wait must not be negative, not %s", c.JWKSWait)}
	}
	keys := remoteKeys(token.JWKSFetcher(nil, c.JWKSURL), c.Keys, log)
	return keys, keys.Run, nil
}

// checkJWKSURL refuses a --jwks-url that is not http(s), and a plain http
// one to a host other than this machine unless insecure: whoever can
// change the answer on the way can make the node accept tokens of their
// own key.
func checkJWKSURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--jwks-url %q is not an http:// or https:// URL", raw)
	}
	if u.Scheme == "http" && !insecure && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("--jwks-url %q is plain http to another machine: use https://, "+
			"or give --jwks-insecure if the network between the node and the web server is private", raw)
	}
	return nil
}

// isLoopbackHost reports whether host names this machine: localhost or a
// loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// remoteKeys returns the key set of a node that fetches its keys with fetch.
func remoteKeys(fetch func(context.Context) (map[string]ed25519.PublicKey, error), c keyRefreshConfig, log *slog.Logger) *token.RemoteKeySet {
	return token.NewRemoteKeySet(token.RemoteConfig{
		Fetch:       fetch,
		Refresh:     c.Refresh,
		MinInterval: c.MinInterval,
		Logger:      log.With("component", "token-keys"),
	})
}

// devKeySource is the node's key source in `tandem dev`: the web server's
// signing keys (service.SigningPublicKeys, read in process), and with
// --dev-tokens the dev key too (devKey nil: without).
func devKeySource(webKeys func(context.Context) (map[string]ed25519.PublicKey, error), devKey *token.Signer) func(context.Context) (map[string]ed25519.PublicKey, error) {
	return func(ctx context.Context) (map[string]ed25519.PublicKey, error) {
		keys, err := webKeys(ctx)
		if err != nil || devKey == nil {
			return keys, err
		}
		keys = maps.Clone(keys)
		if keys == nil {
			keys = make(map[string]ed25519.PublicKey, 1)
		}
		keys[devKey.KeyID()] = devKey.PublicKey()
		return keys, nil
	}
}

package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/token"
)

// realtimeNode is a running realtime node: its gateway and HTTP server.
type realtimeNode struct {
	gw       *gateway.Gateway
	srv      *http.Server
	ln       net.Listener
	serveErr chan error
	drain    time.Duration
	log      *slog.Logger
}

// startRealtime starts a realtime node listening on listen.
func startRealtime(listen, nodeID string, nc nodeConfig, keys *token.KeySet, opts Options, log *slog.Logger) (*realtimeNode, error) {
	if nodeID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		nodeID = "node-" + hex.EncodeToString(b[:])
	}
	reg := observe.NewRegistry()
	gw, err := gateway.New(gateway.Config{
		Node:           nodeID,
		Verifier:       keys,
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
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		_ = gw.Close(context.Background())
		return nil, fmt.Errorf("realtime listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", gw)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !gw.Ready() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	n := &realtimeNode{
		gw:       gw,
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		ln:       ln,
		serveErr: make(chan error, 1),
		drain:    nc.DrainTimeout,
		log:      log,
	}
	go func() { n.serveErr <- n.srv.Serve(ln) }()
	return n, nil
}

// URL returns the node's WebSocket URL.
func (n *realtimeNode) URL() string { return "ws://" + n.ln.Addr().String() + "/ws" }

// run serves until ctx ends, then drains: no new sessions or rooms, rooms
// run until they end or the drain timeout passes, remaining sessions close
// with node_draining.
func (n *realtimeNode) run(ctx context.Context) error {
	select {
	case err := <-n.serveErr:
		_ = n.gw.Close(context.Background())
		return fmt.Errorf("realtime server: %w", err)
	case <-ctx.Done():
	}
	n.log.Info("draining", "timeout", n.drain.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), n.drain)
	n.gw.Drain(drainCtx)
	cancel()
	return n.close()
}

func (n *realtimeNode) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gwErr := n.gw.Close(ctx)
	srvErr := n.srv.Shutdown(ctx)
	if err := <-n.serveErr; !errors.Is(err, http.ErrServerClosed) {
		srvErr = errors.Join(srvErr, err)
	}
	return errors.Join(gwErr, srvErr)
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
	if len(c.TokenKeys) == 0 {
		return usageError{errors.New("--token-keys is required: the public keys realtime tokens are signed with")}
	}
	pubs, err := token.LoadPublicKeyFiles(c.TokenKeys...)
	if err != nil {
		return err
	}
	n, err := startRealtime(c.Listen, c.NodeID, c.Node, token.NewKeySet(pubs), opts, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stdout, "realtime: %s\n", n.URL())
	return n.run(ctx)
}

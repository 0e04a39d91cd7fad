package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/observe"
)

// natsConfig is how a process reaches the cluster's NATS JetStream.
type natsConfig struct {
	URL     string
	Creds   string
	TLSCA   string
	TLSCert string
	TLSKey  string
	NodeTTL time.Duration
}

// registerNATSFlags registers the connection flags; withURL false leaves
// out --nats (tandem dev embeds its server).
func registerNATSFlags(f *flagSet, c *natsConfig, withURL bool) {
	if withURL {
		f.String(&c.URL, "nats", "",
			"NATS server URL(s) of the cluster, comma-separated (JetStream, nats-server 2.11 or newer); empty: no cluster "+
				"(a realtime node runs alone; the web server has no live console and sends no commands)")
		f.String(&c.Creds, "nats-creds", "",
			"NATS credentials file (JWT and NKey seed) to connect with")
		f.String(&c.TLSCA, "nats-tls-ca", "",
			"PEM file of the CA that signed the NATS server's certificate (system roots when empty)")
		f.String(&c.TLSCert, "nats-tls-cert", "",
			"PEM client certificate for NATS servers that require one (with --nats-tls-key)")
		f.String(&c.TLSKey, "nats-tls-key", "",
			"PEM private key of --nats-tls-cert")
	}
	f.Duration(&c.NodeTTL, "node-ttl", 10*time.Second,
		"a realtime node not heard from for this long is gone: it leaves the node registry, its rooms are no longer offered "+
			"and the web server closes its sessions at its last heartbeat (the same value on every process)")
}

func (c natsConfig) check() error {
	if c.NodeTTL < time.Second {
		return fmt.Errorf("--node-ttl must be at least 1s, not %s", c.NodeTTL)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	return nil
}

// connectBus connects to the cluster's NATS (emb: the embedded server of
// tandem dev) as name.
func connectBus(ctx context.Context, c natsConfig, emb *natsbus.Embedded, name string, log *slog.Logger) (*natsbus.Bus, error) {
	bus, err := natsbus.Connect(ctx, natsbus.Config{
		URL:       c.URL,
		Server:    emb,
		CredsFile: c.Creds,
		TLSCA:     c.TLSCA,
		TLSCert:   c.TLSCert,
		TLSKey:    c.TLSKey,
		Name:      name,
		NodeTTL:   c.NodeTTL,
		Logger:    log.With("component", "natsbus"),
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	return bus, nil
}

// startEmbeddedNATS starts tandem dev's NATS server, its store in
// dataDir/nats; listen "" serves only this process.
func startEmbeddedNATS(dataDir, listen string, log *slog.Logger) (*natsbus.Embedded, error) {
	emb, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{
		Dir:    filepath.Join(dataDir, "nats"),
		Listen: listen,
		Logger: log.With("component", "nats-server"),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	return emb, nil
}

// nodeClusterConfig is how a realtime node takes part in the cluster.
type nodeClusterConfig struct {
	AdvertiseURL      string
	HeartbeatInterval time.Duration
	SeatTTL           time.Duration
	EventBuffer       int
	MatchTick         time.Duration
	MatchClaimTimeout time.Duration
}

func registerNodeClusterFlags(f *flagSet, c *nodeClusterConfig, withAdvertise bool) {
	if withAdvertise {
		f.String(&c.AdvertiseURL, "advertise-url", "",
			"WebSocket URL clients reach this node at (ws:// or wss://…/ws), told to clients by the web server and in seat reservations; "+
				"empty: ws://<--listen address>/ws")
	}
	f.Duration(&c.HeartbeatInterval, "node-heartbeat", 2*time.Second,
		"how often the node rewrites its node registry entry (connections, rooms, draining); well under --node-ttl")
	f.Duration(&c.SeatTTL, "seat-ttl", 15*time.Second,
		"how long a seat reservation (a hand-off to a room on this node) waits to be claimed")
	f.Int(&c.EventBuffer, "event-buffer", 4096,
		"events (sessions, rooms, warnings) the node queues for the bus; when full, new ones are dropped and counted in tandem_bus_events_dropped_total")
	f.Duration(&c.MatchTick, "match-tick", time.Second,
		"how often a matcher (on the node holding a queue's lease) runs over its queue")
	f.Duration(&c.MatchClaimTimeout, "match-claim-timeout", 10*time.Second,
		"a ticket claimed for a match by a matcher that stopped before finishing it goes back to searching after this long")
}

func (c nodeClusterConfig) check(n natsConfig) error {
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval*2 > n.NodeTTL {
		return fmt.Errorf("--node-heartbeat must be positive and at most half of --node-ttl (%s), not %s", n.NodeTTL, c.HeartbeatInterval)
	}
	if c.SeatTTL <= 0 {
		return fmt.Errorf("--seat-ttl must be positive, not %s", c.SeatTTL)
	}
	if c.EventBuffer < 1 {
		return fmt.Errorf("--event-buffer must be at least 1, not %d", c.EventBuffer)
	}
	if c.MatchTick <= 0 || c.MatchClaimTimeout <= c.MatchTick {
		return fmt.Errorf("--match-tick must be positive and under --match-claim-timeout (%s), not %s", c.MatchClaimTimeout, c.MatchTick)
	}
	if c.AdvertiseURL != "" {
		// The web server hands it to clients as is: a URL they cannot dial
		// would strand every player sent to this node.
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--advertise-url %q is not a ws:// or wss:// URL with a host", c.AdvertiseURL)
		}
	}
	return nil
}

// clusterBus is the whole bus: the cluster's state and messages, and
// matchmaking (natsbus.Bus).
type clusterBus interface {
	tandem.Cluster
	tandem.Matchmaking
}

// nodeCluster is what a realtime node needs of the cluster: the bus and
// its settings.
type nodeCluster struct {
	bus clusterBus
	cfg nodeClusterConfig
}

// busKeys is a realtime node's view of the web server's public keys in the
// key bucket: kept current by WatchKeys, read by the node's key set.
type busKeys struct {
	mu   sync.Mutex
	keys map[string]ed25519.PublicKey
}

func (k *busKeys) set(keys map[string]ed25519.PublicKey) {
	k.mu.Lock()
	k.keys = maps.Clone(keys)
	k.mu.Unlock()
}

// fetch is the key set's Fetch: the keys last seen in the bucket.
func (k *busKeys) fetch(context.Context) (map[string]ed25519.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		return nil, tandem.Errorf(tandem.EUnavailable, "no token keys in the cluster's key bucket yet (is a web server connected to the same NATS?)")
	}
	return maps.Clone(k.keys), nil
}

// eventLogSink returns what TeeWarnings passes node warnings to: node.log
// events through the node's event buffer.
func eventLogSink(events *natsbus.EventBuffer) func(observe.LogRecord) {
	return func(r observe.LogRecord) {
		events.Emit(tandem.Event{Kind: tandem.EventNodeLog, Level: r.Level.String(), Reason: r.Message, Attrs: r.Attrs})
	}
}

// bucketKeys returns a node's key set read from the cluster's key bucket,
// and the goroutine that keeps it current: it watches the bucket, and the
// key set reads what the watch saw last whenever the watch sees a change
// (so a node started before the web server is ready as soon as the first
// key is published, and a removed key stops verifying at once), besides
// its periodic refresh.
func bucketKeys(bus tandem.KeyBucket, c keyRefreshConfig, log *slog.Logger) (gateway.Verifier, func(context.Context), error) {
	cache := new(busKeys)
	keys := remoteKeys(cache.fetch, c, log)
	run := func(ctx context.Context) {
		retry := time.NewTimer(0)
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-retry.C:
			}
			stop, err := bus.WatchKeys(ctx, func(k map[string]ed25519.PublicKey) {
				cache.set(k)
				keys.RefreshSoon()
			})
			if err == nil {
				defer stop()
				break
			}
			log.Warn("cannot watch the cluster's key bucket; retrying", "err", err)
			retry.Reset(time.Second)
		}
		keys.Run(ctx)
	}
	return keys, run, nil
}

// Package natsbus owns the cluster bus on NATS JetStream (nats-server 2.11
// or newer: per-key TTL and delete markers): the key-value buckets (node
// registry, room directory, presence, seats, bans, token keys, remembered
// command results, token revocations, and matchmaking's queues, tickets
// and matcher leases), the request subjects (node commands, seat
// requests, console inspections, match room requests), the event stream,
// and the bounded buffer realtime nodes publish events through. It
// implements tandem.Cluster and tandem.Matchmaking.
package natsbus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tandemhq/tandem"
)

// The names on the bus. Every process of a cluster must agree on them.
const (
	bucketNodes    = "tandem_nodes"
	bucketRooms    = "tandem_rooms"
	bucketPresence = "tandem_presence"
	bucketSeats    = "tandem_seats"
	bucketBans     = "tandem_bans"
	bucketKeys     = "tandem_keys"
	bucketCmdDone  = "tandem_cmd_done"
	bucketQueues   = "tandem_mm_queues"
	bucketTickets  = "tandem_mm_tickets"
	bucketLeases   = "tandem_mm_leases"

	eventStream     = "TANDEM_EVENTS"
	eventSubjects   = "tandem.events."
	cmdSubjects     = "tandem.cmd."
	seatSubjects    = "tandem.seat."
	inspectSubjects = "tandem.inspect."
	matchSubjects   = "tandem.match."
	wakeSubjects    = "tandem.wake."
	queueGroup      = "tandem"

	// markerTTL is how long a delete marker (a removed or expired entry)
	// stays in a bucket: long enough for a watcher that lost its
	// connection to see the delete when it resumes, short enough that
	// markers of old seats and sessions do not pile up.
	markerTTL = 5 * time.Minute
	// commandMemory is how long nodes remember a command id.
	commandMemory = 24 * time.Hour
	// banGrace keeps a ban entry a little past its end, so a node whose
	// clock is behind still sees the ban until it ends by its own clock.
	banGrace = time.Minute
	// ticketMemory bounds a ticket's life: one not written for this long
	// (a matcher that never came, a node that died) goes.
	ticketMemory = time.Hour
)

// Config configures a connection to the cluster bus.
type Config struct {
	URL                    string    // nats://host:port[,…]; ignored when Server is set
	Server                 *Embedded // in-process connection to an embedded server (tandem dev, tests)
	CredsFile              string    // NATS credentials file (optional)
	TLSCA, TLSCert, TLSKey string    // optional TLS (client certificate optional)
	Name                   string    // connection name (node id / "web")
	Replicas               int       // stream and bucket replicas (default 1)
	// NodeTTL: a node not heard from for this long is gone (default 10s,
	// at least 1s).
	NodeTTL time.Duration
	// EventMaxAge is how long the event stream keeps events (default 7
	// days).
	EventMaxAge time.Duration
	// MatchLeaseTTL: a matcher lease not renewed for this long expires
	// (default 5s, at least 1s). Every process must agree on it: the
	// last to connect sets the bucket's limit.
	MatchLeaseTTL time.Duration
	// RequestTimeout bounds SendCommand, RequestSeat, CreateMatchRoom and
	// the inspections (default 5s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.NodeTTL <= 0 {
		c.NodeTTL = 10 * time.Second
	}
	if c.EventMaxAge <= 0 {
		c.EventMaxAge = 7 * 24 * time.Hour
	}
	if c.MatchLeaseTTL <= 0 {
		c.MatchLeaseTTL = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Bus is a connection to the cluster bus.
type Bus struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream

	nodes, rooms, presence, seats, bans, keys, cmdDone jetstream.KeyValue
	queues, tickets, leases                            jetstream.KeyValue
	events                                             jetstream.Stream
}

var (
	_ tandem.Cluster     = (*Bus)(nil)
	_ tandem.Matchmaking = (*Bus)(nil)
)

// Connect connects to NATS and creates or updates every bucket and the
// event stream (two processes doing so at once both succeed). The first
// connection fails fast; once connected, the connection is re-established
// forever.
func Connect(ctx context.Context, c Config) (*Bus, error) {
	c.setDefaults()
	if c.NodeTTL < time.Second {
		return nil, tandem.Errorf(tandem.EInvalid, "node TTL must be at least 1s, not %s", c.NodeTTL)
	}
	if c.MatchLeaseTTL < time.Second {
		return nil, tandem.Errorf(tandem.EInvalid, "match lease TTL must be at least 1s, not %s", c.MatchLeaseTTL)
	}
	log := c.Logger
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats error", "subject", subj, "err", err)
		}),
	}
	url := c.URL
	if c.Server != nil {
		opts = append(opts, nats.InProcessServer(c.Server.srv))
		url = ""
	} else if url == "" {
		return nil, tandem.Errorf(tandem.EInvalid, "no NATS URL")
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b := &Bus{cfg: c, log: log, nc: nc, js: js}
	if err := b.setUp(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// Close closes the connection. Watches and servers still running end.
func (b *Bus) Close() error {
	b.nc.Close()
	return nil
}

func (b *Bus) setUp(ctx context.Context) error {
	r := b.cfg.Replicas
	buckets := []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&b.nodes, jetstream.KeyValueConfig{Bucket: bucketNodes, Description: "realtime node registry", TTL: b.cfg.NodeTTL, LimitMarkerTTL: markerTTL}},
		{&b.rooms, jetstream.KeyValueConfig{Bucket: bucketRooms, Description: "room directory", LimitMarkerTTL: markerTTL}},
		{&b.presence, jetstream.KeyValueConfig{Bucket: bucketPresence, Description: "each player's live session", LimitMarkerTTL: markerTTL}},
		{&b.seats, jetstream.KeyValueConfig{Bucket: bucketSeats, Description: "seat reservations", LimitMarkerTTL: markerTTL}},
		{&b.bans, jetstream.KeyValueConfig{Bucket: bucketBans, Description: "account bans in force", LimitMarkerTTL: markerTTL}},
		{&b.keys, jetstream.KeyValueConfig{Bucket: bucketKeys, Description: "public keys of realtime tokens"}},
		{&b.cmdDone, jetstream.KeyValueConfig{Bucket: bucketCmdDone, Description: "results of node commands, by command id", TTL: commandMemory}},
		{&b.queues, jetstream.KeyValueConfig{Bucket: bucketQueues, Description: "matchmaking queue configurations", LimitMarkerTTL: markerTTL}},
		{&b.tickets, jetstream.KeyValueConfig{Bucket: bucketTickets, Description: "matchmaking tickets, by queue and player", TTL: ticketMemory, LimitMarkerTTL: markerTTL}},
		{&b.leases, jetstream.KeyValueConfig{Bucket: bucketLeases, Description: "matcher leases, one per queue", TTL: b.cfg.MatchLeaseTTL, LimitMarkerTTL: markerTTL}},
	}
	for _, bk := range buckets {
		bk.cfg.Storage = jetstream.FileStorage
		bk.cfg.Replicas = r
		kv, err := retryCreate(ctx, func() (jetstream.KeyValue, error) { return b.js.CreateOrUpdateKeyValue(ctx, bk.cfg) })
		if err != nil {
			return fmt.Errorf("bucket %s: %w", bk.cfg.Bucket, err)
		}
		*bk.kv = kv
	}
	dup := 2 * time.Minute
	if b.cfg.EventMaxAge < dup {
		dup = b.cfg.EventMaxAge
	}
	s, err := retryCreate(ctx, func() (jetstream.Stream, error) {
		return b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        eventStream,
			Description: "events of the realtime nodes",
			Subjects:    []string{eventSubjects + ">"},
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			MaxAge:      b.cfg.EventMaxAge,
			Duplicates:  dup,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
		})
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", eventStream, err)
	}
	b.events = s
	return nil
}

// Wake publishes a wake-up of job to every replica watching it: a plain
// message, lost if no one listens (the job's interval covers that).
func (b *Bus) Wake(ctx context.Context, job string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.nc.Publish(wakeSubjects+key(job), nil)
}

// WatchWakes calls fn for every later wake-up of job until ctx ends or
// stop is called. fn runs on the subscription's goroutine, one call at a
// time.
func (b *Bus) WatchWakes(ctx context.Context, job string, fn func()) (stop func(), err error) {
	sub, err := b.nc.Subscribe(wakeSubjects+key(job), func(*nats.Msg) { fn() })
	if err != nil {
		return nil, err
	}
	// The subscription is registered with the server before returning,
	// so a wake published after the call is seen.
	fctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	var once sync.Once
	unsubscribe := func() { once.Do(func() { _ = sub.Unsubscribe() }) }
	stopAfter := context.AfterFunc(ctx, unsubscribe)
	return func() {
		stopAfter()
		unsubscribe()
	}, nil
}

// retryCreate retries create a few times: two processes creating the same
// stream at once see "already in use" or "not found" on the losing side.
func retryCreate[T any](ctx context.Context, create func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		if v, err = create(); err == nil {
			return v, nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return v, err
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return v, err
		}
	}
	return v, err
}

// key maps an id (player, room, node, seat token, command id) to a valid
// key and subject token, one to one: ids made only of [-_A-Za-z0-9] map
// to themselves, any other is "=" + base64url (and '=' is never part of a
// plain id).
func key(id string) string {
	if id != "" && plain(id) {
		return id
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// idOf is key's inverse.
func idOf(k string) string {
	if enc, ok := strings.CutPrefix(k, "="); ok {
		if raw, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
			return string(raw)
		}
	}
	return k
}

func plain(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is the delay before retry n (from 0): doubling from 100ms up to
// 5s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for range min(n, 6) {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// redactURL drops user info from URLs for error messages.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "[redacted]" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// ttlFor rounds d up to whole seconds (the server's TTL unit), at least 1s.
func ttlFor(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

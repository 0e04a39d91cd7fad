package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/token"
)

// The cluster benchmarks measure what issue 6 reports: the latency of an
// operator's command to its effect on a client, a ban's propagation to
// clients on two nodes, and the event ingest rate into PostgreSQL. They
// run a web server on PostgreSQL and two nodes in this process, on an
// embedded NATS server; docs/benchmarks.md has the commands and figures.

// benchCluster is a web server and two realtime nodes on one bus.
type benchCluster struct {
	web   *webServer
	nodes []*realtimeNode
	bus   *natsbus.Bus // the web server's connection
	db    *pgx.Conn    // for counting what the web server stored
}

func startBenchCluster(b *testing.B) *benchCluster {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := b.TempDir()
	emb, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: filepath.Join(dir, "nats")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(emb.Shutdown)
	connect := func(name string) *natsbus.Bus {
		bus, err := natsbus.Connect(b.Context(), natsbus.Config{Server: emb, Name: name, NodeTTL: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = bus.Close() })
		return bus
	}

	var wc webCmdConfig
	if err := parse(webFlags(&wc, io.Discard), []string{"--player-limit-per-address", "1000000", "--player-limit-per-account", "1000000"}, nil); err != nil {
		b.Fatal(err)
	}
	wc.Web.NodeTTL = 5 * time.Second
	dbURL := pgtest.URL(b)
	db, err := openDatabase(b.Context(), dbURL, log)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(b.Context(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close(context.Background()) })
	audit, err := token.LoadOrCreateKeyFile(filepath.Join(dir, "audit-key.pem"))
	if err != nil {
		b.Fatal(err)
	}
	kek, err := loadOrCreateKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c := &benchCluster{bus: connect("web"), db: conn}
	if c.web, err = startWeb(ln, db, wc.Web, webKeys{audit: audit, kek: kek}, c.bus, log); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.web.close() })

	for _, id := range []string{"n1", "n2"} {
		var rc realtimeConfig
		if err := parse(realtimeFlags(&rc, io.Discard), []string{"--node-heartbeat", "200ms", "--drain-timeout", "1s"}, nil); err != nil {
			b.Fatal(err)
		}
		cl := &nodeCluster{bus: connect(id), cfg: rc.Cluster}
		verifier, keepCurrent, err := bucketKeys(cl.bus, rc.Keys, log)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		n, err := startRealtime(ln, id, rc.Node, verifier, keepCurrent, Options{}, log, cl)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = n.close() })
		c.nodes = append(c.nodes, n)
	}
	return c
}

// player logs a new guest in and connects it to node i.
func (c *benchCluster) player(b *testing.B, i int, device string) *client.Client {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Second)
	defer cancel()
	auth, err := client.LoginGuest(ctx, client.AuthConfig{BaseURL: c.web.url}, device, client.NewDeviceSecret())
	if err != nil {
		b.Fatal(err)
	}
	cl, err := client.Dial(ctx, client.Config{URL: c.nodes[i].URL(), Token: auth.RealtimeTokenSource()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cl.Close() })
	return cl
}

// waitEvent returns the client's next event of type E within 20 s.
func waitEvent[E client.Event](b *testing.B, c *client.Client) E {
	b.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				b.Fatalf("events of %s ended", c.PlayerID())
			}
			if e, ok := ev.(E); ok {
				return e
			}
		case <-timeout:
			b.Fatalf("%s: no %T within 20s", c.PlayerID(), *new(E))
		}
	}
}

// reportPercentiles reports the p50, p99 and max of ds in milliseconds.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkClusterCommandLatency: an operator's notice to a player, from
// the service call (the console's action) to the notice read by the
// player's SDK on a node.
func BenchmarkClusterCommandLatency(b *testing.B) {
	c := startBenchCluster(b)
	p := c.player(b, 0, "bench-command")
	actor := service.CLIActor("bench")
	waitOnline(b, c, p.PlayerID())
	lat := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := c.web.svc.SendCommand(b.Context(), actor, service.CommandRequest{
			Kind: tandem.CommandNotice, PlayerID: p.PlayerID(), Text: "n" + strconv.Itoa(i),
		}); err != nil {
			b.Fatal(err)
		}
		n := waitEvent[*client.Notice](b, p)
		lat = append(lat, time.Since(start))
		if n.Text != "n"+strconv.Itoa(i) {
			b.Fatalf("notice %q, want n%d", n.Text, i)
		}
	}
	reportPercentiles(b, lat)
}

// waitOnline waits until the web server sees the player's presence (a
// command to them is routed by it).
func waitOnline(b *testing.B, c *benchCluster, player string) {
	b.Helper()
	end := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.bus.Presence(b.Context(), player); err == nil {
			return
		}
		if time.Now().After(end) {
			b.Fatalf("player %s not online", player)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// BenchmarkClusterBanPropagation: two players, one on each node, banned at
// once (one BanPlayer each, back to back); the time from the first ban's
// call until each client reads its banned close.
func BenchmarkClusterBanPropagation(b *testing.B) {
	c := startBenchCluster(b)
	actor := service.CLIActor("bench")
	lat := make([]time.Duration, 0, 2*b.N)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		players := []*client.Client{c.player(b, 0, fmt.Sprintf("ban-a-%d", i)), c.player(b, 1, fmt.Sprintf("ban-b-%d", i))}
		b.StartTimer()
		start := time.Now()
		for _, p := range players {
			if _, err := c.web.svc.BanPlayer(b.Context(), actor, service.BanRequest{PlayerID: p.PlayerID(), Scope: tandem.BanAccount, Reason: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
		for _, p := range players {
			closed := waitEvent[*client.Closed](b, p)
			lat = append(lat, time.Since(start))
			var ce *client.CloseError
			if !asCloseError(closed.Err, &ce) || ce.Code != protocol.CloseBanned {
				b.Fatalf("%s closed with %v, want banned", p.PlayerID(), closed.Err)
			}
		}
	}
	reportPercentiles(b, lat)
}

// BenchmarkClusterEventIngest: events published to the stream as a node
// would, until all are stored in PostgreSQL by the web server's consumer;
// reports events per second end to end.
func BenchmarkClusterEventIngest(b *testing.B) {
	c := startBenchCluster(b)
	const batch, publishers = 10000, 8
	at := time.Now()
	total := 0
	start := time.Now()
	for r := 0; b.Loop(); r++ {
		var wg sync.WaitGroup
		for w := range publishers {
			wg.Go(func() {
				for i := w; i < batch; i += publishers {
					ev := tandem.Event{ID: fmt.Sprintf("bench-%d-%d", r, i), Node: "bench", Kind: tandem.EventRoomJoined,
						At: at, RoomID: "room-" + strconv.Itoa(i%100), PlayerID: "p" + strconv.Itoa(i)}
					if err := c.bus.PublishEvent(b.Context(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total += batch
		end := time.Now().Add(60 * time.Second)
		for storedEvents(b, c, "bench") < total {
			if time.Now().After(end) {
				b.Fatalf("only %d of %d events stored", storedEvents(b, c, "bench"), total)
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// storedEvents counts the events of node stored by the web server.
func storedEvents(b *testing.B, c *benchCluster, node string) int {
	b.Helper()
	var n int
	if err := c.db.QueryRow(b.Context(), `SELECT count(*) FROM cluster_events WHERE node = $1`, node).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func asCloseError(err error, target **client.CloseError) bool { return errors.As(err, target) }

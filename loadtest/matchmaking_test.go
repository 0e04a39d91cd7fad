package loadtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/internal/clustertest"
	mmservice "github.com/tandemhq/tandem/matchmaker/service"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/token"
)

// startMatchmakingNode serves a node that runs matchmaking on an embedded
// NATS server (matchers every 20 ms), trusting the dev key of a fresh data
// directory, and returns its URL, the signer and the web side's bus, which
// holds the queues.
func startMatchmakingNode(t *testing.T) (string, *token.Signer, *natsbus.Bus) {
	t.Helper()
	signer, err := token.LoadOrCreateDevKey(filepath.Join(t.TempDir(), "dev-signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	emb := clustertest.StartNATS(t)
	web := clustertest.Connect(t, emb, natsbus.Config{Name: "web", NodeTTL: 5 * time.Second})
	nb := clustertest.Connect(t, emb, natsbus.Config{Name: "n1", NodeTTL: 5 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/ws"
	gw, err := gateway.New(gateway.Config{
		Node:              "n1",
		Verifier:          token.NewKeySet(map[string]ed25519.PublicKey{signer.KeyID(): signer.PublicKey()}),
		RoomTypes:         room.BuiltinTypes(),
		Cluster:           nb,
		AdvertiseURL:      url,
		HeartbeatInterval: 100 * time.Millisecond,
		Matchmaking: mmservice.New(mmservice.Config{
			Node: "n1", Bus: nb, Cluster: nb, Tick: 20 * time.Millisecond, SeatGrace: 100 * time.Millisecond, Ended: time.Minute,
		}),
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Close(ctx); err != nil {
			t.Errorf("close gateway: %v", err)
		}
		_ = srv.Shutdown(ctx)
		<-served
	})
	return url, signer, web
}

// TestMatchmakingChurnsThroughAQueue runs the matchmaking scenario with a
// handful of players in a queue of pairs: matches are made and finished,
// and the players' tickets end only as done.
func TestMatchmakingChurnsThroughAQueue(t *testing.T) {
	url, signer, web := startMatchmakingNode(t)

	// A queue the node does not know fails the run at once, and says how
	// to make one.
	_, err := Run(t.Context(), Config{Scenario: "matchmaking", Queue: "nope", Clients: 2, Duration: 5 * time.Second, URL: url, Signer: signer})
	if err == nil || !strings.Contains(err.Error(), "not_found") || !strings.Contains(err.Error(), "--queue") {
		t.Fatalf("Run with an unknown queue: %v, want an error naming not_found and --queue", err)
	}

	if err := web.PutQueue(t.Context(), tandem.MatchQueue{Name: "duel", RoomType: "relay", Teams: 2, TeamSize: 1}); err != nil {
		t.Fatal(err)
	}
	// The node learns of the queue through its watch: poll with tiny runs
	// until it does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := Run(t.Context(), Config{Scenario: "matchmaking", Queue: "duel", Clients: 2, Duration: 200 * time.Millisecond, URL: url, Signer: signer})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "not_found") || time.Now().After(deadline) {
			t.Fatalf("the node never took tickets in the new queue: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}

	for _, bots := range []string{"raw", "sdk"} {
		t.Run(bots, func(t *testing.T) {
			var log bytes.Buffer
			rep, err := Run(t.Context(), Config{Bots: bots, Scenario: "matchmaking", Queue: "duel", Clients: 6, Duration: 1500 * time.Millisecond,
				URL: url, Signer: signer, Log: &log})
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s\nlog:\n%s", table.String(), log.String())
			got := map[string]float64{}
			for _, m := range rep.Measures {
				got[m.Name] = m.Value
			}
			if got["matches finished"] < 1 || got["ticket → matched samples"] < 2 || got["ticket → joined samples"] < 2 {
				t.Errorf("no match went through: %v", got)
			}
			for _, n := range rep.Notes {
				if strings.Contains(n, "failed") || strings.Contains(n, "lost") {
					t.Errorf("note: %s", n)
				}
			}
			if len(rep.Errors) > 0 || len(rep.Closes) > 0 {
				t.Errorf("error frames %v, closes %v: want none", rep.Errors, rep.Closes)
			}
		})
	}

	// The SDK bots fail on an unknown queue just as the raw ones.
	_, err = Run(t.Context(), Config{Bots: "sdk", Scenario: "matchmaking", Queue: "nope", Clients: 2, Duration: 5 * time.Second, URL: url, Signer: signer})
	if err == nil || !strings.Contains(err.Error(), "not_found") || !strings.Contains(err.Error(), "--queue") {
		t.Fatalf("Run with SDK bots and an unknown queue: %v, want an error naming not_found and --queue", err)
	}
}

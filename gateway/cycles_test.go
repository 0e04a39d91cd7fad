package gateway_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

// TestNoGoroutineOrFDGrowthAfterConnectJoinDisconnectCycles connects,
// joins a relay room and disconnects 2,000 times — a third of them with a
// normal close, a third with a reset and a third with a FIN but no
// WebSocket close, the last two leaving the session held until its seat
// hold ends — and then expects the process's goroutines and open files back
// where they were.
func TestNoGoroutineOrFDGrowthAfterConnectJoinDisconnectCycles(t *testing.T) {
	const (
		cycles  = 2000
		workers = 8
		margin  = 10
	)
	n := startNode(t, func(c *gateway.Config) {
		c.SeatHold = 20 * time.Millisecond
		c.EmptyRoomTimeout = 20 * time.Millisecond
	})
	p := newProxy(t, n)

	cycle := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := sdkConfig(n, p, fmt.Sprintf("cycle-%d", i), protocol.CodecID(i%2))
		var mu sync.Mutex
		var local net.Addr
		dial := cfg.NetDial
		cfg.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dial(ctx, network, addr)
			if err == nil {
				mu.Lock()
				local = nc.LocalAddr()
				mu.Unlock()
			}
			return nc, err
		}
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		go func() {
			for range c.Events() {
			}
		}()
		if _, err := c.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE, RoomType: "relay"}); err != nil {
			return fmt.Errorf("join: %w", err)
		}
		if i%3 == 0 {
			return c.Close()
		}
		mu.Lock()
		addr := local.String()
		mu.Unlock()
		for _, pc := range p.Conns() {
			if pc.ClientAddr().String() == addr {
				if i%3 == 1 {
					pc.Reset()
				} else {
					_ = pc.Close()
				}
			}
		}
		return c.Close()
	}
	run := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		next := make(chan int)
		for range workers {
			wg.Go(func() {
				for i := range next {
					if err := cycle(i); err != nil {
						t.Errorf("cycle %d: %v", i, err)
					}
				}
			})
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	quiet := func() bool {
		return n.gw.Sessions().Len() == 0 && n.gw.Rooms().Len() == 0 && len(p.Conns()) == 0
	}

	run(0, 100) // warm-up: pools, timers, the proxy's and server's first goroutines
	waitFor(t, 30*time.Second, "the node to forget the warm-up sessions and rooms", quiet)
	baseG, baseFD := settled(t)
	t.Logf("baseline after warm-up: %d goroutines, %d open files", baseG, baseFD)

	start := time.Now()
	run(100, 100+cycles)
	t.Logf("%d cycles took %v", cycles, time.Since(start))
	waitFor(t, 30*time.Second, "the node to forget every session and room", quiet)
	var g, fd int
	if !poll(30*time.Second, func() bool {
		g, fd = runtime.NumGoroutine(), openFiles(t)
		return g <= baseG+margin && fd <= baseFD+margin
	}) {
		t.Errorf("after %d cycles: %d goroutines (baseline %d), %d open files (baseline %d)", cycles, g, baseG, fd, baseFD)
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	t.Logf("after %d cycles: %d goroutines, %d open files", cycles, g, fd)
}

// settled measures goroutines and open files once they have stopped
// falling.
func settled(t *testing.T) (goroutines, files int) {
	t.Helper()
	goroutines, files = runtime.NumGoroutine(), openFiles(t)
	for range 50 {
		time.Sleep(10 * time.Millisecond)
		g, f := runtime.NumGoroutine(), openFiles(t)
		if g >= goroutines && f >= files {
			break
		}
		goroutines, files = min(g, goroutines), min(f, files)
	}
	return goroutines, files
}

func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	switch {
	case err != nil && runtime.GOOS != "linux":
		t.Skipf("cannot count open files without /proc: %v", err)
	case err != nil:
		t.Fatalf("cannot count open files: %v", err) // Linux, and so CI, always has /proc
	}
	return len(ents)
}

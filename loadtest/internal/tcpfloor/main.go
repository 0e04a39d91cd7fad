//go:build unix

// Command tcpfloor measures what plain loopback TCP costs on this machine,
// the floor under Tandem's realtime figures (docs/benchmarks.md): the round
// trip of a 128-byte echo between two processes, and the server's CPU time
// per unbatched 130-byte write when it writes one message to each of many
// connections in turn, as a node does for a broadcast at a tick. Pin the two
// sides to the cores the benchmarks use:
//
//	go build -o /tmp/tcpfloor ./loadtest/internal/tcpfloor
//	taskset -c 0 /tmp/tcpfloor -serve 127.0.0.1:7798 &
//	taskset -c 1 /tmp/tcpfloor -connect 127.0.0.1:7798
//
// It listens and connects on loopback only.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

func main() {
	serve := flag.String("serve", "", "listen on this loopback address and answer")
	connect := flag.String("connect", "", "measure against the server at this loopback address")
	conns := flag.Int("conns", 1000, "connections of the fan-out test")
	rounds := flag.Int("rounds", 200, "messages written to each connection in the fan-out test")
	dur := flag.Duration("echo", 5*time.Second, "length of the echo test")
	flag.Parse()
	var err error
	switch {
	case *serve != "":
		err = runServer(*serve)
	case *connect != "":
		err = runClient(*connect, *conns, *rounds, *dur)
	default:
		err = fmt.Errorf("give -serve or -connect")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpfloor:", err)
		os.Exit(1)
	}
}

func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The server: the first byte of a connection says what it is. 'E' echoes
// until EOF; 'D' is a data connection of the fan-out; 'F' + conns + rounds
// (uint32 each) runs the fan-out over the data connections seen so far and
// answers with the CPU time and wall time it took (int64 ns each).
func runServer(addr string) error {
	if err := loopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("tcpfloor: listening on %s\n", ln.Addr())
	var mu sync.Mutex
	var data []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			var kind [1]byte
			if _, err := io.ReadFull(c, kind[:]); err != nil {
				c.Close()
				return
			}
			switch kind[0] {
			case 'E':
				_, _ = io.Copy(c, c)
				c.Close()
			case 'D':
				mu.Lock()
				data = append(data, c)
				mu.Unlock()
			case 'F':
				var req [8]byte
				if _, err := io.ReadFull(c, req[:]); err != nil {
					c.Close()
					return
				}
				n, rounds := int(binary.BigEndian.Uint32(req[:])), int(binary.BigEndian.Uint32(req[4:]))
				mu.Lock()
				targets := slices.Clone(data[len(data)-n:])
				mu.Unlock()
				msg := make([]byte, 130)
				c0, t0 := cpu(), time.Now()
				for range rounds {
					for _, d := range targets {
						if _, err := d.Write(msg); err != nil {
							c.Close()
							return
						}
					}
				}
				var resp [16]byte
				binary.BigEndian.PutUint64(resp[:], uint64(cpu()-c0))
				binary.BigEndian.PutUint64(resp[8:], uint64(time.Since(t0)))
				_, _ = c.Write(resp[:])
				c.Close()
				for _, d := range targets {
					d.Close()
				}
			default:
				c.Close()
			}
		}()
	}
}

func runClient(addr string, n, rounds int, dur time.Duration) error {
	if err := loopback(addr); err != nil {
		return err
	}
	// Echo round trip.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte{'E'}); err != nil {
		return err
	}
	buf := make([]byte, 128)
	var rtts []time.Duration
	for end := time.Now().Add(dur); time.Now().Before(end); {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		rtts = append(rtts, time.Since(t0))
	}
	c.Close()
	slices.Sort(rtts)
	at := func(q float64) time.Duration { return rtts[min(int(q*float64(len(rtts))), len(rtts)-1)] }
	fmt.Printf("echo 128 B round trip: p50 %v, p99 %v, max %v (%d samples)\n",
		at(0.5).Round(time.Microsecond), at(0.99).Round(time.Microsecond), rtts[len(rtts)-1].Round(time.Microsecond), len(rtts))

	// Fan-out: n connections, each read by its own goroutine.
	var wg sync.WaitGroup
	for range n {
		d, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		if _, err := d.Write([]byte{'D'}); err != nil {
			return err
		}
		wg.Go(func() {
			_, _ = io.CopyN(io.Discard, bufio.NewReader(d), int64(130*rounds))
			d.Close()
		})
	}
	time.Sleep(200 * time.Millisecond) // let the server register them
	ctl, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	req := []byte{'F', 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(req[1:], uint32(n))
	binary.BigEndian.PutUint32(req[5:], uint32(rounds))
	c0 := cpu()
	if _, err := ctl.Write(req); err != nil {
		return err
	}
	var resp [16]byte
	if _, err := io.ReadFull(ctl, resp[:]); err != nil {
		return err
	}
	wg.Wait()
	clientCPU := cpu() - c0
	serverCPU, wall := time.Duration(binary.BigEndian.Uint64(resp[:])), time.Duration(binary.BigEndian.Uint64(resp[8:]))
	writes := n * rounds
	fmt.Printf("fan-out: %d writes of 130 B over %d connections in %v: server CPU %.2f µs per write (%.0f writes/s per core), reader CPU %.2f µs per message\n",
		writes, n, wall.Round(time.Millisecond), float64(serverCPU)/float64(time.Microsecond)/float64(writes),
		float64(writes)/serverCPU.Seconds(), float64(clientCPU)/float64(time.Microsecond)/float64(writes))
	return nil
}

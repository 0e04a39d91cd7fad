// Command harness serves the conformance harness API (conformance/README.md,
// "Harness") for SDK drivers that cannot start realtime nodes and fault
// proxies in their own process. It prints `harness: http://ADDR` on stdout
// once it listens, and runs until SIGINT, SIGTERM or the end of its stdin,
// so that a parent test process that dies takes it along.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/tandemhq/tandem/conformance/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (loopback only)")
	scenarios := flag.String("scenarios", "", "directory of the scenario files (default: conformance/scenarios in the working directory or the nearest parent holding one)")
	flag.Parse()
	dir := *scenarios
	if dir == "" {
		var err error
		if dir, err = findScenarios(); err != nil {
			return err
		}
	}
	ln, err := harness.ListenLoopback(*listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Printf("harness: http://%s\n", ln.Addr())
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	return harness.Serve(ctx, ln, harness.Config{Scenarios: dir, Logger: log})
}

// findScenarios looks for conformance/scenarios in the working directory
// and its parents, so the harness runs from anywhere in the repository.
func findScenarios() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "conformance", "scenarios")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no conformance/scenarios here or above: give --scenarios")
		}
		dir = parent
	}
}

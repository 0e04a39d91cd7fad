package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

// deadline bounds every wait: a program starting, a frame arriving, a
// process draining. The tests never sleep; they wait for what they expect
// and fail at the deadline.
const deadline = 15 * time.Second

// drainTimeout is what the servers under test get as --drain-timeout, so
// that SIGTERM ends them quickly even with rooms still running.
const drainTimeout = time.Second

// proc is a program a test started, with its output captured. The test's
// cleanup kills it if it is still running and, when the test failed, logs
// its output.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *output
	stderr *output
	done   chan struct{} // closed when the process has exited and its output is read
}

// startProc starts bin with args.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{
		name:   name,
		cmd:    exec.Command(bin, args...),
		stdout: newOutput(),
		stderr: newOutput(),
		done:   make(chan struct{}),
	}
	p.cmd.Env = programEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = deadline // a grandchild holding the output open must not hang Wait
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait() // the exit status is read from ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %s\n--- stdout:\n%s--- stderr:\n%s", name, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// programEnv is the environment of the programs under test: the test's own,
// without TANDEM_* variables, which would set flags the tests do not see.
func programEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TANDEM_") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// waitExit waits for the process to exit and returns its exit status (-1
// when a signal killed it).
func (p *proc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(deadline):
		t.Fatalf("%s did not exit within %s", p.name, deadline)
		return 0
	}
}

// waitStdout waits until the process's stdout matches re and returns the
// submatches. It fails at the deadline or when the process exits first.
func (p *proc) waitStdout(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	return p.waitOutput(t, p.stdout, re)
}

// waitStderr is waitStdout for the process's stderr.
func (p *proc) waitStderr(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	return p.waitOutput(t, p.stderr, re)
}

func (p *proc) waitOutput(t *testing.T, o *output, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(deadline)
	for {
		text, grew := o.read()
		if m := re.FindStringSubmatch(text); m != nil {
			return m
		}
		select {
		case <-grew:
		case <-p.done:
			if m := re.FindStringSubmatch(o.String()); m != nil {
				return m
			}
			t.Fatalf("%s exited (%s) before its output matched %q", p.name, p.cmd.ProcessState, re)
		case <-timeout:
			t.Fatalf("%s: no output matching %q within %s", p.name, re, deadline)
		}
	}
}

// output collects a process's output and tells waiters when it grows.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	grew chan struct{} // closed, and replaced, at every write
}

func newOutput() *output { return &output{grew: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(b)
	close(o.grew)
	o.grew = make(chan struct{})
	return len(b), nil
}

// read returns the output so far and a channel closed when it grows.
func (o *output) read() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String(), o.grew
}

func (o *output) String() string {
	s, _ := o.read()
	return s
}

// runProg runs bin with args to the end and returns its stdout, stderr and
// exit status.
func runProg(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runProgIn(t, "", bin, args...)
}

// runProgIn is runProg with stdin as the program's standard input.
func runProgIn(t *testing.T, stdin, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = programEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// server is a running `dev` of the tandem program or of a game built on it.
type server struct {
	*proc
	bin     string
	dataDir string
	web     string // the web server's URL
	url     string // the realtime node's WebSocket URL
	token   string // the token `dev` printed, for dev-player (--dev-tokens)
}

var (
	realtimeLine = regexp.MustCompile(`(?m)^realtime: +(ws://\S+)$`)
	tokenLines   = regexp.MustCompile(`(?m)^token for player \S+ .*:\n(\S+)\n`)
)

// startDev runs `bin dev` on random ports with dataDir, and waits until it
// prints the realtime URL and its token. --dev-tokens makes the node accept
// the tokens of tokenFor (the dev key of dataDir) beside the web server's.
func startDev(t *testing.T, bin, dataDir string) *server {
	t.Helper()
	s := startDevArgs(t, bin, dataDir, "--dev-tokens")
	s.token = s.waitStdout(t, tokenLines)[1]
	return s
}

// startDevArgs runs `bin dev` on random ports with dataDir and extra
// flags, and waits until it prints its URLs. Without --dev-tokens its
// players log in through the web server's player API.
func startDevArgs(t *testing.T, bin, dataDir string, extra ...string) *server {
	t.Helper()
	args := append([]string{"dev",
		"--data-dir", dataDir,
		"--web-listen", "127.0.0.1:0",
		"--realtime-listen", "127.0.0.1:0",
		"--drain-timeout", drainTimeout.String(),
	}, extra...)
	p := startProc(t, filepath.Base(bin)+" dev", bin, args...)
	s := &server{proc: p, bin: bin, dataDir: dataDir}
	s.web = p.waitStdout(t, webLine)[1]
	s.url = p.waitStdout(t, realtimeLine)[1]
	return s
}

// tokenFor returns a token for player from the server's `token` subcommand
// (same program, same data directory, so the same dev key).
func (s *server) tokenFor(t *testing.T, player string, extra ...string) string {
	t.Helper()
	stdout, stderr, code := runProg(t, s.bin, append([]string{"token", "--player", player, "--data-dir", s.dataDir}, extra...)...)
	if code != 0 {
		t.Fatalf("token --player %s: exit %d: %s", player, code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// stop sends SIGTERM and checks that the server drains and exits 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGTERM)
	if code := s.waitExit(t); code != 0 {
		t.Fatalf("%s exited %d after SIGTERM, want 0", s.name, code)
	}
}

// dial connects a Go SDK client; the test's cleanup closes it.
func dial(t *testing.T, url, token string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{
		URL:        url,
		Token:      func(context.Context) (string, error) { return token, nil },
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// withDeadline returns a context for one request that ends at the deadline.
func withDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// next returns the client's next event of type E, skipping events of other
// types. It fails at the deadline, or when the client stops.
func next[E client.Event](t *testing.T, c *client.Client) E {
	t.Helper()
	var skipped []string
	timeout := time.After(deadline)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("%s: events ended while waiting for %T (skipped: %s)", c.PlayerID(), *new(E), strings.Join(skipped, ", "))
			}
			if e, ok := ev.(E); ok {
				return e
			}
			skipped = append(skipped, describe(ev))
		case <-timeout:
			t.Fatalf("%s: no %T within %s (skipped: %s)", c.PlayerID(), *new(E), deadline, strings.Join(skipped, ", "))
		}
	}
}

func describe(ev client.Event) string {
	switch e := ev.(type) {
	case *client.RoomMessage:
		return fmt.Sprintf("RoomMessage{%s %s %s}", e.From, e.Topic, e.Data)
	case *client.RoomEvent:
		return fmt.Sprintf("RoomEvent{%s %s}", e.PlayerID, e.Kind)
	default:
		return fmt.Sprintf("%T%+v", ev, ev)
	}
}

// waitNodeDrained waits until the client's connection ends with the
// node_draining close, which a server sends its sessions when it drains on
// SIGTERM.
func waitNodeDrained(t *testing.T, c *client.Client) {
	t.Helper()
	d := next[*client.Disconnected](t, c)
	var ce *client.CloseError
	if !errors.As(d.Err, &ce) || ce.Code != protocol.CloseNodeDraining {
		t.Errorf("%s disconnected with %v, want close %d (%s)", c.PlayerID(), d.Err, uint16(protocol.CloseNodeDraining), protocol.CloseNodeDraining)
	}
}

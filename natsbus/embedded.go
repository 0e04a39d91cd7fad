package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server.
type EmbeddedConfig struct {
	// Dir holds the JetStream store; a restart on the same Dir keeps the
	// buckets and the stream.
	Dir string
	// Listen is the client listener: "" none (in-process connections
	// only), "127.0.0.1:0" a random port, "host:port" a fixed one.
	Listen string
	Logger *slog.Logger
}

// Embedded is an in-process NATS server with JetStream (tandem dev, tests).
type Embedded struct {
	srv  *server.Server
	once sync.Once
}

// StartEmbedded starts a server and waits until it takes connections.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	if c.Dir == "" {
		return nil, errors.New("embedded nats: Dir is required (the JetStream store)")
	}
	opts := &server.Options{
		JetStream: true,
		StoreDir:  c.Dir,
		NoSigs:    true,
		// No system account users, no auth: the server is reachable only
		// in-process or on the address the operator chose.
		NoLog: c.Logger == nil,
	}
	if c.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen address %q: %w", c.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT // nats-server reads port 0 as its default, 4222
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if c.Logger != nil {
		srv.SetLoggerV2(serverLogger{c.Logger}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded nats: the server did not become ready within 30s")
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients on other processes connect to; "" when
// the server does not listen.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown stops the server and waits until it has stopped. Calling it
// again does nothing.
func (e *Embedded) Shutdown() {
	e.once.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	})
}

// serverLogger passes nats-server's log lines to slog.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

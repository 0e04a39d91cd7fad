package postgres

import (
	"context"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaseClass is the first key of every job lease: session-level advisory
// locks on the two-int4 form pg_try_advisory_lock(leaseClass, hash), with
// hash the FNV-1a 32-bit hash of the lease's name. The two-key form is a
// lock space of its own in PostgreSQL, apart from the one-bigint keys of
// signing key rotation ("tandmsk1"), pgtest's template build ("tandmtp1")
// and goose; leaseClass is the bytes of "tndl" read as a big-endian int32.
const leaseClass int32 = 0x746e646c

// defaultLeaseCheck is how often a held lease's connection is pinged.
const defaultLeaseCheck = time.Second

func leaseKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int32(h.Sum32())
}

// TryLease takes the job lease name: a session advisory lock on a
// connection of its own (not the pool's), held until release. The lock
// dies with the connection, so a replica killed outright frees its leases
// at once. The connection is pinged every Config.LeaseCheck; when it
// breaks, lost is closed. When ctx ends the lease is released too.
func (s *Store) TryLease(ctx context.Context, name string) (func(), <-chan struct{}, bool, error) {
	conn, err := pgx.ConnectConfig(ctx, leaseConnConfig(s.pool.Config().ConnConfig))
	if err != nil {
		return nil, nil, false, dbError(err, "lease: connect", "", "")
	}
	key := leaseKey(name)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, leaseClass, key).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, nil, false, dbError(err, "lease: lock", "", "")
		}
		return nil, nil, false, nil
	}
	lost, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go s.holdLease(ctx, conn, key, lost, stop, done)
	var once sync.Once
	release := func() {
		once.Do(func() { close(stop) })
		<-done
	}
	return release, lost, true, nil
}

// The lease connection's keepalives. The lock lives as long as the
// server believes the connection does: a holder cut off from the network
// (not closed) would keep it until the kernel's default keepalive gave up
// (about 2 h), stopping the job cluster-wide. With these the server drops
// the connection, and the lock, within about 20 s of silence, and the
// holder's side gives up as fast.
const (
	leaseKeepAliveIdle     = 5 * time.Second
	leaseKeepAliveInterval = 5 * time.Second
	leaseKeepAliveCount    = 3
	leaseUserTimeout       = 20 * time.Second
)

// leaseConnConfig is the pool's connection configuration with keepalives
// tight enough for a lease on both ends: the server's (tcp_keepalives_*,
// tcp_user_timeout) and ours (the dialer's).
func leaseConnConfig(base *pgx.ConnConfig) *pgx.ConnConfig {
	c := base.Copy()
	params := map[string]string{
		"tcp_keepalives_idle":     strconv.Itoa(int(leaseKeepAliveIdle / time.Second)),
		"tcp_keepalives_interval": strconv.Itoa(int(leaseKeepAliveInterval / time.Second)),
		"tcp_keepalives_count":    strconv.Itoa(leaseKeepAliveCount),
		"tcp_user_timeout":        strconv.Itoa(int(leaseUserTimeout / time.Millisecond)),
	}
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	for k, v := range params {
		if _, set := c.RuntimeParams[k]; !set {
			c.RuntimeParams[k] = v
		}
	}
	d := &net.Dialer{
		Timeout: c.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: leaseKeepAliveIdle, Interval: leaseKeepAliveInterval, Count: leaseKeepAliveCount,
		},
	}
	c.DialFunc = d.DialContext
	return c
}

// holdLease owns conn while the lease is held: it pings it, and unlocks
// and closes it when stop closes or ctx ends.
func (s *Store) holdLease(ctx context.Context, conn *pgx.Conn, key int32, lost, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.leaseCheck)
	defer t.Stop()
	for {
		select {
		case <-stop:
		case <-ctx.Done():
		case <-t.C:
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.leaseCheck+5*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
			close(lost)
			_ = conn.Close(context.Background())
			return
		}
		// Unlocking before closing hands the lease over without waiting for
		// the server to notice the closed connection.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, leaseClass, key)
		_ = conn.Close(uctx)
		cancel()
		return
	}
}

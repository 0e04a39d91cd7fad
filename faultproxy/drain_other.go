//go:build !linux

package faultproxy

import (
	"net"
	"time"
)

// waitSent would wait for the peer to acknowledge everything written to conn
// before a reset; only Linux exposes that, so elsewhere a reset may cut bytes
// still in the send buffer.
func waitSent(*net.TCPConn, time.Duration, <-chan struct{}) {}

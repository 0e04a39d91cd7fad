package faultproxy

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// waitSent waits until the peer has acknowledged every byte written to conn,
// or timeout passes, or done closes. An abortive close throws away what the
// kernel still holds, so without this a reset could cut bytes the proxy has
// already counted as forwarded.
func waitSent(conn *net.TCPConn, timeout time.Duration, done <-chan struct{}) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for time.Now().Before(deadline) {
		var unacked int32
		var errno syscall.Errno
		err := raw.Control(func(fd uintptr) {
			// TIOCOUTQ (SIOCOUTQ) on a TCP socket: bytes not yet acknowledged.
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&unacked)))
		})
		if err != nil || errno != 0 || unacked == 0 {
			return
		}
		select {
		case <-done:
			return
		case <-poll.C:
		}
	}
}

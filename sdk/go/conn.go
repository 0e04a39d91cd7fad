package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tandemhq/tandem/protocol"
)

// wsConn is one WebSocket connection to a realtime node. Reads happen on one
// goroutine at a time (the handshake, then serve). Writes go through
// Client.write, which holds Client.wmu, except during the handshake, when
// the connection is not shared yet.
type wsConn struct {
	nc    net.Conn
	src   connReader
	rd    wsutil.Reader
	op    ws.OpCode // text (JSON) or binary
	codec protocol.Codec

	closeSent bool     // a close frame was written: write nothing more (guarded by Client.wmu)
	sess      *session // the session the connection carries, set by attach
}

// connReader reads what the handshake left buffered, then the connection.
type connReader struct {
	br *bufio.Reader
	nc net.Conn
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.br != nil {
		if r.br.Buffered() > 0 {
			return r.br.Read(p)
		}
		ws.PutReader(r.br)
		r.br = nil
	}
	return r.nc.Read(p)
}

// dialError is a failure to open the WebSocket: the node did not answer,
// or refused the upgrade (a draining node answers 503). The reconnect loop
// asks Config.Locate where to go after one.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialWS opens the WebSocket at url offering exactly one subprotocol.
func dialWS(ctx context.Context, url string, cfg *Config, codec protocol.Codec, timeout time.Duration) (*wsConn, error) {
	d := ws.Dialer{
		Protocols: []string{codec.Name()},
		NetDial:   cfg.NetDial,
		Timeout:   timeout,
	}
	nc, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, &dialError{fmt.Errorf("tandem: websocket dial %s: %w", url, err)}
	}
	if hs.Protocol != codec.Name() {
		if br != nil {
			ws.PutReader(br)
		}
		nc.Close()
		return nil, fmt.Errorf("tandem: websocket dial %s: server did not accept subprotocol %q", url, codec.Name())
	}
	wc := &wsConn{nc: nc, src: connReader{br: br, nc: nc}, codec: codec, op: ws.OpText}
	if codec.Binary() {
		wc.op = ws.OpBinary
	}
	wc.rd = wsutil.Reader{Source: &wc.src, State: ws.StateClientSide, CheckUTF8: true}
	return wc, nil
}

// writeFrame writes one masked data frame. The caller holds Client.wmu or
// owns the connection alone.
func (wc *wsConn) writeFrame(payload []byte, timeout time.Duration) error {
	if wc.closeSent {
		return net.ErrClosed
	}
	if err := wc.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	return wsutil.WriteClientMessage(wc.nc, wc.op, payload)
}

// writeControl writes a control frame (pong or close); nothing is written
// after a close. The caller holds Client.wmu or owns the connection alone.
func (wc *wsConn) writeControl(op ws.OpCode, payload []byte, timeout time.Duration) error {
	if wc.closeSent {
		return nil
	}
	if op == ws.OpClose {
		wc.closeSent = true
	}
	if err := wc.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	return wsutil.WriteClientMessage(wc.nc, op, payload)
}

// controlFunc writes a control frame in answer to the server's: a pong for
// a ping, the echo of a close. readEnvelope calls it, possibly in the middle
// of a fragmented message.
type controlFunc func(op ws.OpCode, payload []byte) error

// readEnvelope reads the next data message and decodes it into env. Control
// frames are handled on the way: a ping is answered through control, a close
// ends the read with a *CloseError. Reading nothing for timeout is
// ErrHeartbeatTimeout.
func (wc *wsConn) readEnvelope(env *protocol.Envelope, timeout time.Duration, control controlFunc) error {
	handle := func(h ws.Header, r io.Reader) error {
		payload, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		switch h.OpCode {
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(payload)
			if len(payload) < 2 {
				code = ws.StatusNoStatusRcvd
			}
			echo := code
			if echo.IsProtocolReserved() {
				echo = ws.StatusNormalClosure
			}
			_ = control(ws.OpClose, ws.NewCloseFrameBody(echo, "")) // echo the close (RFC 6455 5.5.1)
			return &CloseError{Code: protocol.CloseCode(code), Reason: reason}
		case ws.OpPing:
			return control(ws.OpPong, payload)
		}
		return nil // pong: nothing to do
	}
	wc.rd.OnIntermediate = handle
	for {
		if err := wc.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		h, err := wc.rd.NextFrame()
		if err != nil {
			return readError(err)
		}
		if h.OpCode.IsControl() {
			if err := handle(h, &wc.rd); err != nil {
				return readError(err)
			}
			continue
		}
		if h.OpCode != ws.OpText && h.OpCode != ws.OpBinary {
			if err := wc.rd.Discard(); err != nil {
				return readError(err)
			}
			continue
		}
		// io.ReadAll grows its buffer as bytes arrive: a declared length
		// is never trusted for allocation.
		payload, err := io.ReadAll(&wc.rd)
		if err != nil {
			return readError(err)
		}
		if err := wc.codec.Unmarshal(payload, env); err != nil {
			return &decodeError{err}
		}
		return nil
	}
}

// decodeError is a frame the codec could not decode; the frame is skipped.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func readError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrHeartbeatTimeout
	}
	return err
}

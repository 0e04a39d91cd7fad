package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

func TestBrowserOperatorClosesARoomAndItsPlayersStayConnected(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startDevArgs(t, bins.tandem, dataDir)
	runWithStdin(t, "operator password 1\n", bins.tandem, "admin", "create",
		"--db", "sqlite:"+filepath.Join(dataDir, "tandem.db"), "--audit-key", filepath.Join(dataDir, "audit-key.pem"),
		"--admin-name", "op", "--role", "operator", "--password-stdin")

	p1, _ := guest(t, s.web, "console-device-1", s.url)
	p2, _ := guest(t, s.web, "console-device-2", s.url)
	room, err := p1.Join(withDeadline(t), client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Join(withDeadline(t), client.JoinOptions{RoomID: room.ID()}); err != nil {
		t.Fatal(err)
	}

	browser := newBrowser(t)
	op := newBrowserContextConfirming(t, browser, func(msg string) bool { return strings.HasPrefix(msg, "Close room "+room.ID()) })
	login(t, op, s.web, "op", "operator password 1")
	do(t, op, "find the room in the console",
		chromedp.WaitVisible(css(`nav a[href="/admin/rooms"]`)),
		chromedp.Click(css(`nav a[href="/admin/rooms"]`)),
		chromedp.WaitVisible(css(`a[href="/admin/rooms/`+room.ID()+`"]`)),
		chromedp.Click(css(`a[href="/admin/rooms/`+room.ID()+`"]`)),
		chromedp.WaitVisible(css(`form[action$="/close"] button`)),
	)
	do(t, op, "close the room",
		chromedp.Click(css(`form[action$="/close"] button`)),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(., "pending until its node acknowledges it")]`)),
	)

	// Both players leave the room with room_closed and keep their
	// connection: the next join works on the same session.
	for _, p := range []*client.Client{p1, p2} {
		left := next[*client.Left](t, p)
		if left.Room.ID() != room.ID() || left.Reason != protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED {
			t.Errorf("%s: left %s with %s, want %s with room_closed", p.PlayerID(), left.Room.ID(), left.Reason, room.ID())
		}
	}
	session := p1.SessionID()
	if _, err := p1.Join(withDeadline(t), client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}); err != nil {
		t.Fatalf("join after the room closed: %v", err)
	}
	if p1.SessionID() != session {
		t.Errorf("the session changed from %s to %s: the player was disconnected", session, p1.SessionID())
	}

	do(t, op, "see the command delivered",
		chromedp.Navigate(s.web+"/admin/commands"),
		chromedp.WaitVisible(chromedp.Search(`//tr[contains(., "close_room")][contains(., "delivered")]`)),
	)
}

// Command client is a small command-line client on the Go SDK
// (sdk/go, package client), used by the README walkthrough.
//
// Log in: --web logs in as a guest at the web server's player API and
// keeps the realtime token fresh, so every reconnect gets a new one. The
// guest is this machine's device --device (default "default"): its device
// id and secret are made on the first run and kept in the user's config
// directory (tandem/example-client/NAME.json, or --device-file), so later
// runs log in as the same player. The realtime URL is the one the web
// server names, unless --url says otherwise. --token instead connects with
// a realtime token minted elsewhere (tandem token), which is never renewed.
//
// Chat in a relay room: it joins a room (join-or-create by type, or --room
// by id), prints every room message and membership change, and sends each
// line typed on stdin to the other members:
//
//	go run ./examples/client --web http://127.0.0.1:7700 --device alice
//
// Move in the arena: --arena joins an arena room, steers right and prints
// the positions the server computes:
//
//	go run ./examples/client --arena --web http://127.0.0.1:7700 --device carol
//
// Play another room type: --room-type picks it and --topic the topic of the
// lines typed, such as a tictactoe game of examples/customgame:
//
//	go run ./examples/client --room-type tictactoe --topic move --token ...   # then type {"cell":4}
//
// Find a match: --queue NAME puts the player in a matchmaking queue
// (configured in the admin UI's Matchmaking page), prints the ticket's
// progress and, once matched, chats in the match's room:
//
//	go run ./examples/client --web http://127.0.0.1:7700 --device dave --queue duel
//
// Ctrl-C leaves and exits. --say TEXT sends TEXT once instead of reading
// stdin; --exit-after N exits after N room messages (with --arena, N state
// updates), so scripts and tests can drive it. --rpc METHOD calls a
// server-side function, prints its answer and exits.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

type options struct {
	url, token       string
	web              string // log in as a guest here instead of using token
	device           string // name of the guest identity
	deviceFile       string // where it is kept; "" = by name in the config dir
	roomType, roomID string
	topic            string
	arena            bool
	say              string
	exitAfter        int
	rpc              string
	queue            string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "realtime WebSocket URL (default: the one the web server names, else "+defaultRealtimeURL+")")
	flag.StringVar(&o.web, "web", "", "web server URL, such as http://127.0.0.1:7700: log in there as a guest")
	flag.StringVar(&o.device, "device", "default", "with --web: the name of this machine's guest identity (one player per name)")
	flag.StringVar(&o.deviceFile, "device-file", "", "with --web: the file keeping the device id and secret (default: NAME.json in the user config dir's tandem/example-client)")
	flag.StringVar(&o.token, "token", "", "realtime token minted elsewhere (tandem token --player NAME), instead of --web")
	flag.StringVar(&o.roomType, "room-type", "relay", "room type to join or create")
	flag.StringVar(&o.roomID, "room", "", "join this room id instead of join-or-create by type")
	flag.StringVar(&o.topic, "topic", "chat", "topic of the messages sent")
	flag.BoolVar(&o.arena, "arena", false, "join an arena room, move right and print positions")
	flag.StringVar(&o.say, "say", "", "send this one message instead of reading stdin")
	flag.IntVar(&o.exitAfter, "exit-after", 0, "exit after receiving this many room messages (with --arena: state updates); 0 = never")
	flag.StringVar(&o.rpc, "rpc", "", "call this RPC, print its answer and exit")
	flag.StringVar(&o.queue, "queue", "", "find a match in this matchmaking queue instead of joining a room")
	flag.Parse()
	if (o.token == "") == (o.web == "") || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "client: give --web (log in as a guest) or --token, not both")
		flag.Usage()
		os.Exit(2)
	}
	if o.arena {
		o.roomType = "arena"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

const defaultRealtimeURL = "ws://127.0.0.1:7701/ws"

// run logs in (with --web), connects, joins and prints what arrives until
// ctx ends, --exit-after is reached or the server ends the session for good.
func run(ctx context.Context, o options, stdin io.Reader, out io.Writer) error {
	cfg := client.Config{
		URL: o.url,
		// Called at every (re)connect. A token given with --token is used
		// as it is (and fails once it expires).
		Token: func(context.Context) (string, error) { return o.token, nil },
	}
	if o.web != "" {
		auth, err := loginGuest(ctx, o, out)
		if err != nil {
			return err
		}
		cfg.Token = auth.RealtimeTokenSource() // a fresh token at every (re)connect
		if cfg.URL == "" {
			cfg.URL = auth.RealtimeURL()
		}
	}
	if cfg.URL == "" {
		cfg.URL = defaultRealtimeURL
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.rpc != "" {
		answer, err := c.RPC(ctx, o.rpc, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", answer)
		return nil
	}

	arena := positions{}
	r, err := start(ctx, c, o, arena, out)
	if err != nil {
		return err
	}
	lines := make(chan string)
	if !o.arena && o.say == "" {
		go readLines(stdin, lines)
	}
	received := 0
	for {
		select {
		case <-ctx.Done():
			return nil // Close (deferred) ends the session; the room sees us leave
		case line := <-lines:
			if err := r.Send(ctx, o.topic, []byte(line), client.Others()); err != nil {
				fmt.Fprintln(out, "not sent:", err)
			}
		case ev, ok := <-c.Events():
			if !ok {
				return errors.New("connection closed")
			}
			switch e := ev.(type) {
			case *client.Joined:
				fmt.Fprintf(out, "* in the room: %s\n", strings.Join(e.Players, ", "))
			case *client.RoomMessage:
				fmt.Fprintf(out, "%s: %s\n", sender(e.From, e.Topic, o.topic), e.Data)
				received++
			case *client.Snapshot:
				arena.snapshot(e.State, out)
				received++
			case *client.Delta:
				arena.delta(e.Patch, out)
				received++
			case *client.Gap:
				// Frames were lost beyond the server's buffer: start over
				// from the state it sent.
				arena.snapshot(e.State, out)
			case *client.RoomEvent:
				fmt.Fprintf(out, "* %s %s\n", e.PlayerID, eventText(e))
			case *client.Left:
				fmt.Fprintf(out, "* left room %s (%s)\n", e.Room.ID(), leaveText(e.Reason))
				return nil
			case *client.ErrorEvent:
				fmt.Fprintln(out, "server error:", e.Err)
			case *client.Notice:
				fmt.Fprintf(out, "* notice (%s): %s\n", e.Kind, e.Text)
			case *client.Disconnected:
				fmt.Fprintln(out, "* disconnected, reconnecting:", e.Err)
			case *client.Resumed:
				fmt.Fprintln(out, "* resumed: nothing was lost")
			case *client.SessionLost:
				// The server ended the session (it drained, or we were away
				// longer than the seat hold): the SDK has a new session; join
				// again.
				fmt.Fprintln(out, "* session lost, joining again:", e.Err)
				if r, err = start(ctx, c, o, arena, out); err != nil {
					return err
				}
			case *client.Closed:
				return e.Err // a final close: do not reconnect
			}
			if o.exitAfter > 0 && received >= o.exitAfter {
				return nil
			}
		}
	}
}

// device is a guest identity: whoever has both is that player.
type device struct {
	DeviceID string `json:"device_id"`
	Secret   string `json:"secret"`
}

// loginGuest logs in as the guest of the --device identity, made on first
// use.
func loginGuest(ctx context.Context, o options, out io.Writer) (*client.Auth, error) {
	path := o.deviceFile
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("no config directory for the device identity (give --device-file): %w", err)
		}
		path = filepath.Join(dir, "tandem", "example-client", o.device+".json")
	}
	d, err := loadDevice(path)
	if err != nil {
		return nil, err
	}
	auth, err := client.LoginGuest(ctx, client.AuthConfig{BaseURL: o.web}, d.DeviceID, d.Secret)
	if err != nil {
		return nil, fmt.Errorf("guest login at %s: %w", o.web, err)
	}
	how := "logged in"
	if auth.Created() {
		how = "new guest"
	}
	fmt.Fprintf(out, "%s: player %s (device %s)\n", how, auth.PlayerID(), path)
	return auth, nil
}

// loadDevice reads the identity kept in path, or makes one and keeps it
// there (readable by the user only: the secret is the guest's password).
func loadDevice(path string) (device, error) {
	var d device
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &d); err != nil || d.DeviceID == "" || d.Secret == "" {
			return d, fmt.Errorf("%s does not hold a device id and secret; remove it to start a new guest", path)
		}
		return d, nil
	case !errors.Is(err, fs.ErrNotExist):
		return d, err
	}
	d = device{DeviceID: "example-" + rand.Text(), Secret: client.NewDeviceSecret()}
	b, _ = json.Marshal(d) // two strings: cannot fail
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return d, err
	}
	// Written aside and linked into place: of two clients started at once,
	// one makes the identity and the other reads it whole.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".device-*")
	if err != nil {
		return d, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, fs.ErrExist) {
		return loadDevice(path)
	}
	return d, err
}

// start joins the room --room names, or any open room of the type (creating
// one when there is none), and then steers in the arena or says --say.
func start(ctx context.Context, c *client.Client, o options, arena positions, out io.Writer) (*client.Room, error) {
	var r *client.Room
	var err error
	if o.queue != "" {
		// Until matched (Ctrl-C cancels the ticket).
		r, err = c.Matchmake(ctx, client.TicketRequest{Queue: o.queue, Progress: func(s client.TicketStatus) {
			fmt.Fprintf(out, "* ticket in %s: %s %s\n", s.Queue, s.State, s.Reason)
		}})
		if err != nil {
			return nil, fmt.Errorf("matchmake: %w", err)
		}
	} else {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if r, err = c.Join(jctx, client.JoinOptions{RoomID: o.roomID, RoomType: o.roomType}); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
	}
	fmt.Fprintf(out, "joined %s room %s as %s\n", r.Type(), r.ID(), c.PlayerID())
	switch {
	case o.arena:
		arena.snapshot(r.State(), out)
		// The arena's handler reads "move"; no member needs to see it.
		err = r.Send(ctx, "move", []byte(`{"dx":1,"dy":0}`), client.HandlerOnly())
	case o.say != "":
		err = r.Send(ctx, o.topic, []byte(o.say), client.Others())
	}
	return r, err
}

// readLines sends each non-empty line of in to lines. At the end of input it
// returns; the client keeps printing until Ctrl-C.
func readLines(in io.Reader, lines chan<- string) {
	s := bufio.NewScanner(in)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); line != "" {
			lines <- line
		}
	}
}

// sender names who sent a message: the player, or "(room)" for the room's
// handler, with the topic when it is not the one this client sends.
func sender(from, topic, ours string) string {
	if from == "" {
		from = "(room)"
	}
	if topic != ours {
		from += " [" + topic + "]"
	}
	return from
}

func eventText(e *client.RoomEvent) string {
	switch e.Kind {
	case protocol.RoomEventKind_ROOM_EVENT_JOINED:
		return "joined"
	case protocol.RoomEventKind_ROOM_EVENT_LEFT:
		return "left (" + leaveText(e.Reason) + ")"
	case protocol.RoomEventKind_ROOM_EVENT_DISCONNECTED:
		return "disconnected (seat held)"
	case protocol.RoomEventKind_ROOM_EVENT_REJOINED:
		return "reconnected"
	}
	return e.Kind.String()
}

func leaveText(r protocol.LeaveReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "LEAVE_REASON_"))
}

// positions is what the client knows of an arena: each player's entity, as
// the room's state-sync snapshots and deltas carry them (room/statesync.go):
//
//	snapshot {"tick":N,"entities":{"p:alice":{"x":1,"y":2,"dx":0,"dy":0,"connected":true}}}
//	delta    {"tick":N,"set":{"p:alice":{...}},"del":["p:bob"]}
type positions map[string]arenaPlayer

type arenaPlayer struct {
	X  int `json:"x"`
	Y  int `json:"y"`
	DX int `json:"dx"`
	DY int `json:"dy"`
}

func (ps positions) snapshot(state []byte, out io.Writer) {
	var s struct {
		Tick     uint64                 `json:"tick"`
		Entities map[string]arenaPlayer `json:"entities"`
	}
	if err := json.Unmarshal(state, &s); err != nil {
		fmt.Fprintln(out, "bad snapshot:", err)
		return
	}
	clear(ps)
	for key, p := range s.Entities {
		ps[key] = p
	}
	fmt.Fprintf(out, "tick %d: snapshot of %d players\n", s.Tick, len(ps))
	for _, key := range slices.Sorted(maps.Keys(ps)) {
		ps.print(s.Tick, key, out)
	}
}

func (ps positions) delta(patch []byte, out io.Writer) {
	var d struct {
		Tick uint64                 `json:"tick"`
		Set  map[string]arenaPlayer `json:"set"`
		Del  []string               `json:"del"`
	}
	if err := json.Unmarshal(patch, &d); err != nil {
		fmt.Fprintln(out, "bad delta:", err)
		return
	}
	for _, key := range slices.Sorted(maps.Keys(d.Set)) {
		ps[key] = d.Set[key]
		ps.print(d.Tick, key, out)
	}
	for _, key := range d.Del {
		delete(ps, key)
		fmt.Fprintf(out, "tick %d: %s is gone\n", d.Tick, strings.TrimPrefix(key, "p:"))
	}
}

func (ps positions) print(tick uint64, key string, out io.Writer) {
	p := ps[key]
	fmt.Fprintf(out, "tick %d: %s at (%d,%d) heading (%d,%d)\n", tick, strings.TrimPrefix(key, "p:"), p.X, p.Y, p.DX, p.DY)
}

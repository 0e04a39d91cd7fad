// Package conformance owns the SDK conformance suite's data model: the
// scripted sessions in scenarios/*.json (README.md documents their step
// language), how a file is loaded and checked, and the realtime node every
// scenario runs against (built-in room types plus the RPCs and hook the
// scenarios use). The codec vectors in vectors/ are data only. Each SDK has
// a driver that runs every scenario; the Go SDK's is this package's test.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tandemhq/tandem/protocol"
)

// Scenario is one scripted session: a node configuration and the steps
// the driver performs and checks, in order.
type Scenario struct {
	// Name is the file name without .json; Load sets it.
	Name        string   `json:"-"`
	Description string   `json:"description"`
	Covers      []string `json:"covers"` // the items of the list it proves
	// Nodes are the ids of the realtime nodes to start (default ["a"]); two
	// or more make a cluster sharing one NATS server.
	Nodes []string `json:"nodes,omitempty"`
	Node  Node     `json:"node"`
	Steps []Step   `json:"steps"`
}

// Node is the configuration every node of the scenario starts with. Zero
// fields keep the server's defaults (docs/protocol.md §9.1). Each field is
// the realtime server flag of the same name.
type Node struct {
	HeartbeatMS   int `json:"heartbeat_ms,omitempty"`
	SeatHoldMS    int `json:"seat_hold_ms,omitempty"`
	SendQueue     int `json:"send_queue,omitempty"`
	ReplayCount   int `json:"replay_count,omitempty"`
	ReplayBytes   int `json:"replay_bytes,omitempty"`
	MsgRate       int `json:"msg_rate,omitempty"`
	MsgBurst      int `json:"msg_burst,omitempty"`
	ByteRate      int `json:"byte_rate,omitempty"`
	MaxFrameBytes int `json:"max_frame_bytes,omitempty"`
	FloodRefusals int `json:"flood_refusals,omitempty"`
}

// Step is one step. Op names it; the other fields are its arguments (which
// ones each op takes: README.md and the ops table below).
type Step struct {
	Op     string `json:"op"`
	Client string `json:"client,omitempty"`
	Node   string `json:"node,omitempty"`

	// connect
	Player             string `json:"player,omitempty"`
	Codec              string `json:"codec,omitempty"`
	Token              string `json:"token,omitempty"`
	HeartbeatTimeoutMS int    `json:"heartbeat_timeout_ms,omitempty"`

	// join, leave, send
	Room           string   `json:"room,omitempty"`
	RoomType       string   `json:"room_type,omitempty"`
	Mode           string   `json:"mode,omitempty"`
	As             string   `json:"as,omitempty"`
	AwaitDirectory bool     `json:"await_directory,omitempty"`
	Topic          string   `json:"topic,omitempty"`
	Data           string   `json:"data,omitempty"`
	Delivery       string   `json:"delivery,omitempty"`
	To             []string `json:"to,omitempty"`
	Count          int      `json:"count,omitempty"`
	First          int      `json:"first,omitempty"` // send: the number of the first of count messages (default 1)
	Size           int      `json:"size,omitempty"`

	// rpc
	Method string  `json:"method,omitempty"`
	Reply  *string `json:"reply,omitempty"`

	// the expected failure of connect, join, rpc: error code names
	Error *ExpectedError `json:"error,omitempty"`

	// expect, expect_none, expect_frames
	Events []Event  `json:"events,omitempty"`
	Skip   []string `json:"skip,omitempty"`
	Kinds  []string `json:"kinds,omitempty"`
	Body   string   `json:"body,omitempty"`

	// reset, silence, throttle
	Direction      string `json:"direction,omitempty"`
	AfterBytes     int64  `json:"after_bytes,omitempty"`
	BytesPerSecond int    `json:"bytes_per_second,omitempty"`

	// await_close, inject_close (a close code name), connections
	Code     string `json:"code,omitempty"`
	Accepted int    `json:"accepted,omitempty"`
	Open     *int   `json:"open,omitempty"`

	// drain
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// ExpectedError is the failure a step expects: Code is an error code name
// (docs/protocol.md §11), Close a close code name (§12) for a refused
// connect.
type ExpectedError struct {
	Code  string `json:"code,omitempty"`
	Close string `json:"close,omitempty"`
}

// Event is one expected event: "kind" and the fields to compare (only
// those given are compared). Kinds and their fields: EventFields.
type Event map[string]any

// EventFields are the event kinds a driver reports, and the fields of each
// (README.md says what each means). Room ids appear as the scenario's
// aliases, players as their player ids, codes and reasons as names.
var EventFields = map[string][]string{
	"joined":       {"room", "room_type", "players"},
	"message":      {"room", "from", "topic", "data"},
	"room_event":   {"room", "player", "event", "reason"},
	"left":         {"room", "reason", "missed"},
	"gap":          {"room", "epoch", "state"},
	"snapshot":     {"room"},
	"delta":        {"room"},
	"error":        {"code", "room", "topic"},
	"notice":       {"notice_kind", "text"},
	"disconnected": {"class", "code"},
	"resumed":      {},
	"session_lost": {"rooms", "code"},
	"closed":       {"class", "code", "error"},
}

// Ops are the step operations and the fields each requires.
var Ops = map[string][]string{
	"connect":         {"client"},
	"join":            {"client"},
	"leave":           {"client", "room"},
	"send":            {"client", "room", "topic"},
	"rpc":             {"client", "method"},
	"expect":          {"client"},
	"expect_messages": {"client", "room", "topic", "data", "count"},
	"expect_none":     {"client", "kinds"},
	"expect_frames":   {"client", "body", "count"},
	"reset":           {"client"},
	"silence":         {"client", "direction"},
	"throttle":        {"client"},
	"hold_away":       {"client"},
	"let_back":        {"client"},
	"inject_close":    {"client", "code"},
	"await_close":     {"code"},
	"connections":     {"client", "accepted"},
	"close":           {"client"},
	"drain":           {},
}

// Load reads every scenario of dir (its *.json files), in name order. A
// file that does not decode strictly or breaks a rule of Validate is an
// error: a driver must not skip what it cannot run.
func Load(dir string) ([]*Scenario, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	for _, f := range files {
		s, err := LoadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Files lists the scenario files of dir, in name order.
func Files(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// LoadFile reads and checks one scenario file.
func LoadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	s := new(Scenario)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.Name = strings.TrimSuffix(filepath.Base(path), ".json")
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Validate checks what can be checked without running the scenario: known
// ops with their required fields, known event kinds and fields, known
// nodes, and clients connected before use.
func (s *Scenario) Validate() error {
	if len(s.Steps) == 0 {
		return fmt.Errorf("no steps")
	}
	if len(s.Covers) == 0 {
		return fmt.Errorf("covers is empty: say what the scenario proves")
	}
	nodes := s.NodeIDs()
	clients := map[string]bool{}
	for i, st := range s.Steps {
		if err := st.validate(nodes, clients); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st.Op, err)
		}
		if st.Op == "connect" && st.Error == nil {
			clients[st.Client] = true
		}
	}
	return nil
}

// NodeIDs returns the ids of the scenario's nodes.
func (s *Scenario) NodeIDs() []string {
	if len(s.Nodes) == 0 {
		return []string{"a"}
	}
	return s.Nodes
}

func (st *Step) validate(nodes []string, clients map[string]bool) error {
	required, ok := Ops[st.Op]
	if !ok {
		return fmt.Errorf("unknown op %q", st.Op)
	}
	for _, f := range required {
		if !st.has(f) {
			return fmt.Errorf("%s is required", f)
		}
	}
	if st.Node != "" && !slices.Contains(nodes, st.Node) {
		return fmt.Errorf("unknown node %q", st.Node)
	}
	if st.Client != "" && st.Op != "connect" && !clients[st.Client] {
		return fmt.Errorf("client %q is not connected by an earlier step", st.Client)
	}
	switch st.Op {
	case "connect":
		if !slices.Contains([]string{"", "json", "proto"}, st.Codec) {
			return fmt.Errorf("codec %q: want json or proto", st.Codec)
		}
		if !slices.Contains([]string{"", "forged", "expired"}, st.Token) {
			return fmt.Errorf("token %q: want forged or expired", st.Token)
		}
	case "join":
		if (st.Room == "") == (st.RoomType == "") {
			return fmt.Errorf("give exactly one of room and room_type")
		}
		if !slices.Contains([]string{"", "join", "create", "join_or_create"}, st.Mode) {
			return fmt.Errorf("mode %q", st.Mode)
		}
	case "send":
		if !slices.Contains([]string{"", "all", "others", "list", "room"}, st.Delivery) {
			return fmt.Errorf("delivery %q", st.Delivery)
		}
	case "silence", "reset", "throttle":
		if !slices.Contains([]string{"", "up", "down", "both"}, st.Direction) {
			return fmt.Errorf("direction %q: want up, down or both", st.Direction)
		}
	case "inject_close", "await_close":
		if _, ok := protocol.CloseCodeNamed(st.Code); !ok {
			return fmt.Errorf("code %q is not a close code name", st.Code)
		}
	case "expect", "expect_none":
		for _, k := range append(slices.Clone(st.Skip), st.Kinds...) {
			if _, ok := EventFields[k]; !ok {
				return fmt.Errorf("unknown event kind %q", k)
			}
		}
		for j, ev := range st.Events {
			if err := ev.validate(); err != nil {
				return fmt.Errorf("event %d: %w", j+1, err)
			}
		}
	}
	return nil
}

func (st *Step) has(field string) bool {
	switch field {
	case "client":
		return st.Client != ""
	case "room":
		return st.Room != ""
	case "topic":
		return st.Topic != ""
	case "data":
		return st.Data != ""
	case "count":
		return st.Count > 0
	case "kinds":
		return len(st.Kinds) > 0
	case "body":
		return st.Body != ""
	case "method":
		return st.Method != ""
	case "direction":
		return st.Direction != ""
	case "code":
		return st.Code != ""
	case "accepted":
		return st.Accepted > 0
	}
	panic("conformance: no check for required field " + field)
}

// Kind is the event's kind.
func (e Event) Kind() string {
	k, _ := e["kind"].(string)
	return k
}

func (e Event) validate() error {
	fields, ok := EventFields[e.Kind()]
	if !ok {
		return fmt.Errorf("unknown event kind %q", e["kind"])
	}
	for k := range e {
		if k != "kind" && !slices.Contains(fields, k) {
			return fmt.Errorf("%s has no field %q", e.Kind(), k)
		}
	}
	return nil
}

// Expand returns the data of the i-th (1-based) message of a numbered
// series: "{i}" in template replaced by i, then padded with spaces to size
// bytes (size 0: no padding).
func Expand(template string, i, size int) string {
	s := strings.ReplaceAll(template, "{i}", fmt.Sprint(i))
	if len(s) < size {
		s += strings.Repeat(" ", size-len(s))
	}
	return s
}

package loadtest

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/token"
)

func testSigner() *token.Signer {
	_, key, _ := ed25519.GenerateKey(nil)
	return token.NewSigner("test", key)
}

func TestConfigDefaultsPerScenario(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		clients  int
	}{{"idle", 10_000}, {"connect", 10_000}, {"echo", 4}, {"broadcast", 5000}, {"resume", 2}} {
		c := Config{Scenario: tc.scenario, Signer: testSigner()}
		if err := c.setDefaults(); err != nil {
			t.Fatalf("%s: %v", tc.scenario, err)
		}
		if c.Clients != tc.clients || c.Duration != 10*time.Second {
			t.Errorf("%s: %d clients for %s, want %d for 10s", tc.scenario, c.Clients, c.Duration, tc.clients)
		}
	}
}

func TestConfigRefusesUnboundedRuns(t *testing.T) {
	for name, c := range map[string]Config{
		"unknown scenario":     {Scenario: "soak"},
		"too many clients":     {Scenario: "idle", Clients: MaxClients + 1},
		"too long":             {Scenario: "echo", Duration: MaxDuration + time.Second},
		"negative duration":    {Scenario: "echo", Duration: -time.Second},
		"too many rooms":       {Scenario: "broadcast", Rooms: MaxRooms + 1},
		"rooms over relay max": {Scenario: "idle", RoomSize: 17},
		"rate too high":        {Scenario: "broadcast", Rate: MaxRate + 1},
		"payload too small":    {Scenario: "broadcast", Payload: 8},
		"clients in broadcast": {Scenario: "broadcast", Clients: 10},
		"too many iterations":  {Scenario: "resume", Iterations: MaxIterations + 1},
		"too many missed":      {Scenario: "resume", Missed: MaxMissed + 1},
		"concurrency":          {Scenario: "connect", Concurrency: MaxConcurrency + 1},
		"chat without a rate":  {Scenario: "chat"},
		"clients in chat":      {Scenario: "chat", Rate: 1, Clients: 10},
		"no queue":             {Scenario: "matchmaking"},
		"reconnect of one":     {Scenario: "reconnect", RoomSize: 1},
		"negative latency":     {Scenario: "echo", Faults: Faults{Latency: -time.Millisecond}},
		"tiny bandwidth":       {Scenario: "echo", Faults: Faults{Bandwidth: 10}},
		"resets too often":     {Scenario: "echo", Faults: Faults{ResetEvery: time.Millisecond}},
		"unknown bots":         {Scenario: "chat", Rate: 1, Bots: "puppet"},
		"idle with sdk bots":   {Scenario: "idle", Bots: "sdk"},
		"echo with sdk bots":   {Scenario: "echo", Bots: "sdk"},
		"resume with sdk bots": {Scenario: "resume", Bots: "sdk"},
	} {
		c.Signer = testSigner()
		if err := c.setDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestConfigBots: raw is the default; sdk bots in reconnect always go
// through the fault proxy, which cuts them.
func TestConfigBots(t *testing.T) {
	c := Config{Scenario: "chat", Rate: 1, Signer: testSigner()}
	if err := c.setDefaults(); err != nil || c.Bots != "raw" {
		t.Fatalf("default bots %q, %v; want raw", c.Bots, err)
	}
	c = Config{Scenario: "reconnect", Bots: "sdk", Signer: testSigner()}
	if err := c.setDefaults(); err != nil || !c.Faults.Proxy {
		t.Fatalf("sdk reconnect: %v, proxy %t; want the fault proxy on", err, c.Faults.Proxy)
	}
	c = Config{Scenario: "echo", Bots: "sdk", Signer: testSigner()}
	if err := c.setDefaults(); err == nil || !strings.Contains(err.Error(), "frame level") {
		t.Errorf("echo with sdk bots: %v, want an error that says why", err)
	}
}

func TestRunRefusesANonLoopbackURLBeforeConnecting(t *testing.T) {
	_, err := Run(t.Context(), Config{Scenario: "echo", URL: "ws://10.0.0.1:7701/ws", Signer: testSigner()})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Run with a non-loopback URL: %v, want a ConfigError", err)
	}
}

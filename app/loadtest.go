package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tandemhq/tandem/loadtest"
)

// runLoadtest is `tandem loadtest`: one scenario against a node on this
// machine (or, with --allow-remote, elsewhere), reported as a table or
// JSON.
func runLoadtest(ctx context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c loadtestConfig
	if err := parse(loadtestFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	if slices.Contains(loadtest.WebScenarios, c.Scenario) {
		if c.Bots != "" && c.Bots != "raw" {
			return usageError{fmt.Errorf("--bots %s: the web scenario %s makes HTTP requests, not bots", c.Bots, c.Scenario)}
		}
		return runWebLoadtest(ctx, c, stdio)
	}
	signer, err := loadDevSigner(c.DataDir)
	if err != nil {
		return fmt.Errorf("dev key: %w", err)
	}
	rep, err := loadtest.Run(ctx, loadtest.Config{
		URL:         c.URL,
		AllowRemote: c.AllowRemote,
		Scenario:    c.Scenario,
		Codec:       c.Codec,
		Bots:        c.Bots,
		Signer:      signer,
		Clients:     c.Clients,
		Rooms:       c.Rooms,
		RoomSize:    c.RoomSize,
		Duration:    c.Duration,
		Rate:        c.Rate,
		Window:      c.Window,
		Payload:     c.Payload,
		Concurrency: c.Concurrency,
		Iterations:  c.Iterations,
		Missed:      c.Missed,
		ServerPID:   c.ServerPID,
		Queue:       c.Queue,
		Faults: loadtest.Faults{
			Proxy: c.Faults, Latency: c.Latency, Jitter: c.Jitter, Bandwidth: c.Bandwidth, ResetEvery: c.ResetEvery,
		},
		Log: stdio.Stderr,
	})
	return writeReport(rep, err, c.JSON, stdio)
}

// runWebLoadtest runs a scenario against the web server: an admin
// scenario logged in as --admin with the password read from standard
// input, a player scenario with the players it makes itself.
func runWebLoadtest(ctx context.Context, c loadtestConfig, stdio Stdio) error {
	var password string
	if !slices.Contains(loadtest.PlayerScenarios, c.Scenario) {
		if c.Admin == "" || !c.PasswordStdin {
			return usageError{errors.New("the admin scenarios log in: give --admin and the password on standard input with --password-stdin")}
		}
		var err error
		if password, err = readPasswordLine(stdio.Stdin); err != nil {
			return err
		}
	}
	rep, err := loadtest.RunWeb(ctx, loadtest.WebConfig{
		URL:           c.URL,
		AllowRemote:   c.AllowRemote,
		Scenario:      c.Scenario,
		AdminName:     c.Admin,
		AdminPassword: password,
		Rate:          c.RequestRate,
		Concurrency:   c.LoginsInFlight,
		Players:       c.Players,
		Duration:      c.Duration,
		ServerPID:     c.ServerPID,
		Log:           stdio.Stderr,
	})
	return writeReport(rep, err, c.JSON, stdio)
}

// writeReport prints a load run's report as a table or JSON; a bad
// configuration is a usage error.
func writeReport(rep *loadtest.Report, err error, asJSON bool, stdio Stdio) error {
	if ce := (*loadtest.ConfigError)(nil); errors.As(err, &ce) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if asJSON {
		return rep.WriteJSON(stdio.Stdout)
	}
	return rep.WriteTable(stdio.Stdout)
}

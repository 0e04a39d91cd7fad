// Package app is the tandem program as a library: Main runs every
// subcommand (dev, realtime, token, version, …). cmd/tandem calls it with
// the built-in room types; a game's own main calls it with its room types,
// RPC handlers and hooks and gets the same program. Tests run the real
// program in-process through Main.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/room"
)

// Options is what a game adds to Tandem.
type Options struct {
	// RoomTypes are the game's room types, next to the built-in ones
	// (relay, arena) unless NoBuiltins is set. A game type may not reuse a
	// built-in name.
	RoomTypes  []room.Type
	NoBuiltins bool
	// RPCs are server-side functions by method name.
	RPCs map[string]tandem.RPC
	// Hooks are callbacks on session events.
	Hooks tandem.Hooks
}

func (o Options) roomTypes() []room.Type {
	if o.NoBuiltins {
		return o.RoomTypes
	}
	return append(room.BuiltinTypes(), o.RoomTypes...)
}

// Env is how the program reads its environment (os.Getenv in production).
type Env func(string) string

// Stdio are the program's standard streams. Stdin may be nil (no input).
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Main runs the subcommand named by args[0] until it finishes or ctx ends
// (servers drain when ctx ends, as on SIGTERM) and returns the exit status.
func Main(ctx context.Context, args []string, env Env, stdio Stdio, opts Options) int {
	if env == nil {
		env = func(string) string { return "" }
	}
	if stdio.Stdin == nil {
		stdio.Stdin = strings.NewReader("")
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdio.Stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stdio.Stderr, "tandem: unknown command %q\n", args[0])
		usage(stdio.Stderr, cmds)
		return 2
	}
	err := cmd(ctx, args[1:], env, stdio, opts)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stdio.Stderr, "tandem %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stdio.Stderr, "tandem %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a command line the program cannot run.
type usageError struct{ error }

type command func(ctx context.Context, args []string, env Env, stdio Stdio, opts Options) error

func commands() map[string]command {
	return map[string]command{
		"dev":      runDev,
		"web":      runWeb,
		"migrate":  runMigrate,
		"admin":    runAdmin,
		"audit":    runAudit,
		"realtime": runRealtime,
		"token":    runToken,
		"loadtest": runLoadtest,
		"version":  runVersion,
	}
}

func usage(w io.Writer, cmds map[string]command) {
	names := slices.Sorted(maps.Keys(cmds))
	fmt.Fprintf(w, "usage: tandem <command> [flags]\n\ncommands: %s\n\nRun 'tandem <command> -h' for its flags; docs/config.md lists them all.\n", strings.Join(names, ", "))
}

// parse parses a subcommand's flags and refuses stray arguments.
func parse(f *flagSet, args []string, env Env) error {
	if err := f.Parse(args, env); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if rest := f.Args(); len(rest) > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))}
	}
	return nil
}

func runVersion(_ context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	if err := parse(versionFlags(stdio.Stderr), args, env); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stdout, "tandem %s\n", tandem.Version)
	return nil
}

// Run is a whole main: it runs the subcommand named by os.Args with opts
// and exits with its status. The first SIGTERM or Ctrl-C ends the command's
// context (servers drain, then exit 0); a second one kills the process at
// once, for a drain that takes too long.
func Run(opts Options) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the next signal gets its default action
	}()
	code := Main(ctx, os.Args[1:], os.Getenv, Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, opts)
	stop()
	os.Exit(code)
}

package app

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// update is shared by every golden-file test of package app; declare no
// second -update flag in this package.
var update = flag.Bool("update", false, "rewrite generated files (docs/config.md) instead of comparing them")

// configDocPath is docs/config.md seen from the package directory, where go
// test runs.
var configDocPath = filepath.Join("..", "docs", "config.md")

func TestConfigDocMatchesFlags(t *testing.T) {
	want := configDoc(commandFlagSets())
	if *update {
		if err := os.WriteFile(configDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", configDocPath)
		return
	}
	got, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatalf("%v\nGenerate it with: go test ./app -run TestConfigDocMatchesFlags -update", err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("docs/config.md differs from the flags registered in app/flags.go (-generated +file):\n%s\n"+
			"Regenerate it with: go test ./app -run TestConfigDocMatchesFlags -update", diff)
	}
}

// testConfig holds one flag of every type.
type testConfig struct {
	addr    string
	workers int
	verbose bool
	timeout time.Duration
	origins []string
}

func testFlags(c *testConfig) (*flagSet, *bytes.Buffer) {
	var stderr bytes.Buffer
	f := newFlagSet("test", &stderr)
	f.String(&c.addr, "listen-addr", "127.0.0.1:1", "address")
	f.Int(&c.workers, "workers", 2, "workers")
	f.Bool(&c.verbose, "verbose", false, "talk more")
	f.Duration(&c.timeout, "timeout", 5*time.Second, "timeout")
	f.StringList(&c.origins, "origins", []string{"https://a.example"}, "origins")
	return f, &stderr
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var testConfigOpts = cmp.AllowUnexported(testConfig{})

func TestParseTakesFlagsThenEnvironmentThenDefaults(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want testConfig
	}{
		{
			name: "defaults",
			want: testConfig{"127.0.0.1:1", 2, false, 5 * time.Second, []string{"https://a.example"}},
		},
		{
			name: "environment",
			env: map[string]string{
				"TANDEM_LISTEN_ADDR": ":9", "TANDEM_WORKERS": "7", "TANDEM_VERBOSE": "true",
				"TANDEM_TIMEOUT": "250ms", "TANDEM_ORIGINS": "https://b.example, https://c.example,",
			},
			want: testConfig{":9", 7, true, 250 * time.Millisecond, []string{"https://b.example", "https://c.example"}},
		},
		{
			name: "flags",
			args: []string{"--listen-addr", ":8", "--workers=3", "--verbose", "-timeout", "1m", "--origins", "https://d.example"},
			want: testConfig{":8", 3, true, time.Minute, []string{"https://d.example"}},
		},
		{
			name: "flags win over environment",
			args: []string{"--workers", "3", "--verbose=false", "--origins", "https://d.example"},
			env:  map[string]string{"TANDEM_WORKERS": "7", "TANDEM_VERBOSE": "true", "TANDEM_ORIGINS": "https://b.example", "TANDEM_TIMEOUT": "1s"},
			want: testConfig{"127.0.0.1:1", 3, false, time.Second, []string{"https://d.example"}},
		},
		{
			name: "empty variable counts as unset",
			env:  map[string]string{"TANDEM_LISTEN_ADDR": "", "TANDEM_WORKERS": ""},
			want: testConfig{"127.0.0.1:1", 2, false, 5 * time.Second, []string{"https://a.example"}},
		},
		{
			name: "repeated list flag appends",
			args: []string{"--origins", "https://d.example", "--origins", "https://e.example,https://f.example"},
			want: testConfig{"127.0.0.1:1", 2, false, 5 * time.Second, []string{"https://d.example", "https://e.example", "https://f.example"}},
		},
		{
			name: "empty list flag clears the default",
			args: []string{"--origins", ""},
			want: testConfig{"127.0.0.1:1", 2, false, 5 * time.Second, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testConfig
			f, _ := testFlags(&got)
			if err := f.Parse(tt.args, envOf(tt.env)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, testConfigOpts); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWithoutEnvironment(t *testing.T) {
	var got testConfig
	f, _ := testFlags(&got)
	if err := f.Parse([]string{"--workers", "4", "rest", "--not-a-flag"}, nil); err != nil {
		t.Fatal(err)
	}
	if got.workers != 4 {
		t.Errorf("workers = %d, want 4", got.workers)
	}
	if diff := cmp.Diff([]string{"rest", "--not-a-flag"}, f.Args()); diff != "" {
		t.Errorf("Args (-want +got):\n%s", diff)
	}
}

func TestParseNamesTheVariableOfABadEnvironmentValue(t *testing.T) {
	tests := []struct{ env, value string }{
		{"TANDEM_WORKERS", "many"},
		{"TANDEM_VERBOSE", "yes please"},
		{"TANDEM_TIMEOUT", "5"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			var c testConfig
			f, _ := testFlags(&c)
			err := f.Parse(nil, envOf(map[string]string{tt.env: tt.value}))
			if err == nil {
				t.Fatalf("Parse with %s=%q succeeded, want an error", tt.env, tt.value)
			}
			flagName := "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(tt.env, "TANDEM_")), "_", "-")
			for _, want := range []string{tt.env, tt.value, flagName} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestParseRefusesABadFlagValueEvenWithAGoodEnvironment(t *testing.T) {
	var c testConfig
	f, stderr := testFlags(&c)
	err := f.Parse([]string{"--workers", "many"}, envOf(map[string]string{"TANDEM_WORKERS": "3"}))
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	if !strings.Contains(stderr.String(), "workers") {
		t.Errorf("stderr does not name the flag:\n%s", stderr)
	}
}

func TestHelpListsEveryFlagWithItsVariableAndDefault(t *testing.T) {
	var c testConfig
	f, stderr := testFlags(&c)
	if err := f.Parse([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: tandem test", "--listen-addr string", "TANDEM_LISTEN_ADDR", `default "127.0.0.1:1"`, "--timeout duration", `default "5s"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage does not contain %q:\n%s", want, stderr)
		}
	}
}

func TestEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"listen":                 "TANDEM_LISTEN",
		"max-frame-bytes":        "TANDEM_MAX_FRAME_BYTES",
		"room-create-per-minute": "TANDEM_ROOM_CREATE_PER_MINUTE",
	} {
		if got := envName(name); got != want {
			t.Errorf("envName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestRegisteringAnAmbiguousFlagNamePanics(t *testing.T) {
	for _, name := range []string{"Listen", "max_frame", "-listen", "listen-", "a--b", "", "x y"} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %q did not panic", name)
				}
			}()
			var s string
			newFlagSet("test", new(bytes.Buffer)).String(&s, name, "", "")
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "0s",
		250 * time.Millisecond:              "250ms",
		5 * time.Second:                     "5s",
		10 * time.Minute:                    "10m",
		90 * time.Second:                    "1m30s",
		time.Hour:                           "1h",
		time.Hour + 30*time.Minute:          "1h30m",
		time.Hour + time.Second:             "1h0m1s",
		24*time.Hour + 500*time.Millisecond: "24h0m0.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", formatDuration(d), back, err, d)
		}
	}
}

func TestConfigDocHasASectionAndATablePerSubcommand(t *testing.T) {
	var c testConfig
	f, _ := testFlags(&c)
	f.summary = "Tests things."
	empty := newFlagSet("nothing", new(bytes.Buffer))
	var pipe string
	withPipe := newFlagSet("pipe", new(bytes.Buffer))
	withPipe.String(&pipe, "mode", "", "a|b")

	doc := configDoc([]*flagSet{f, empty, withPipe})

	for _, want := range []string{
		"\n## tandem test\n\nTests things.\n\n| Flag | Environment variable | Type | Default | Meaning |\n|---|---|---|---|---|\n",
		"| `--listen-addr` | `TANDEM_LISTEN_ADDR` | string | `127.0.0.1:1` | address |\n",
		"| `--workers` | `TANDEM_WORKERS` | int | `2` | workers |\n",
		"| `--verbose` | `TANDEM_VERBOSE` | bool | `false` | talk more |\n",
		"| `--timeout` | `TANDEM_TIMEOUT` | duration | `5s` | timeout |\n",
		"| `--origins` | `TANDEM_ORIGINS` | list | `https://a.example` | origins |\n",
		"\n## tandem nothing\n\nNo flags.\n",
		"| `--mode` | `TANDEM_MODE` | string |  | a\\|b |\n",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc does not contain %q:\n%s", want, doc)
		}
	}
}

// A flag name means one thing in every subcommand: its environment variable
// is shared, so `TANDEM_DATA_DIR` must not have two defaults.
func TestSharedFlagsAgreeAcrossSubcommands(t *testing.T) {
	seen := map[string]flagDoc{}
	cmdOf := map[string]string{}
	for _, f := range commandFlagSets() {
		for _, d := range f.docs {
			if prev, ok := seen[d.name]; ok && prev != d {
				t.Errorf("--%s differs between tandem %s and tandem %s:\n%+v\n%+v", d.name, cmdOf[d.name], f.cmd, prev, d)
			}
			seen[d.name], cmdOf[d.name] = d, f.cmd
		}
	}
}

func TestEverySubcommandFlagSetParsesItsOwnDefaults(t *testing.T) {
	// Feeding each default back through its environment variable proves
	// the documented defaults are valid input.
	for _, f := range commandFlagSets() {
		env := map[string]string{}
		for _, d := range f.docs {
			env[d.env] = d.def
		}
		if err := f.Parse(nil, envOf(env)); err != nil {
			t.Errorf("tandem %s: %v", f.cmd, err)
		}
	}
}

func TestKeyEncryptionKeyFileIsCreatedOnceAndRefusedWhenOthersCanRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "kek")
	first, err := loadOrCreateKEKFile(path)
	if err != nil || len(first) != 32 {
		t.Fatalf("create: %d bytes, %v", len(first), err)
	}
	again, err := loadOrCreateKEKFile(path)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second load: %v, same key %v", err, bytes.Equal(first, again))
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKEKFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key others can read: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKEKFile(bad); err == nil || !strings.Contains(err.Error(), "64 hex characters") {
		t.Fatalf("a malformed key: %v", err)
	}
}

package app

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// docs/config.md is generated from the flags registered in flags.go; a test
// fails when it is out of date.
//go:generate go test -run TestConfigDocMatchesFlags -update

// envPrefix starts the environment variable of every flag: --max-frame-bytes
// falls back to TANDEM_MAX_FRAME_BYTES.
const envPrefix = "TANDEM_"

// flagSet is the flags of one subcommand. Every flag is registered with a
// name, a default, a usage line and an environment variable, so that parsing,
// -h output and docs/config.md all come from the one registration.
type flagSet struct {
	fs      *flag.FlagSet
	cmd     string // subcommand, such as "realtime"
	summary string // one line for docs/config.md; optional
	docs    []flagDoc
}

// flagDoc describes one registered flag for usage and docs/config.md.
type flagDoc struct {
	name  string // without dashes: "max-frame-bytes"
	env   string // "TANDEM_MAX_FRAME_BYTES"
	kind  string // "string", "int", "bool", "duration" or "list"
	def   string // the default as it would be typed
	usage string
}

// newFlagSet returns an empty flag set for subcommand cmd that writes
// command-line errors and -h output to stderr.
func newFlagSet(cmd string, stderr io.Writer) *flagSet {
	f := &flagSet{fs: flag.NewFlagSet(cmd, flag.ContinueOnError), cmd: cmd}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() { f.writeUsage(f.fs.Output()) }
	return f
}

// String registers a string flag stored in *p.
func (f *flagSet) String(p *string, name, def, usage string) {
	f.fs.StringVar(p, name, def, usage)
	f.record(name, "string", def, usage)
}

// Int registers an integer flag stored in *p.
func (f *flagSet) Int(p *int, name string, def int, usage string) {
	f.fs.IntVar(p, name, def, usage)
	f.record(name, "int", strconv.Itoa(def), usage)
}

// Bool registers a boolean flag stored in *p.
func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	f.fs.BoolVar(p, name, def, usage)
	f.record(name, "bool", strconv.FormatBool(def), usage)
}

// Duration registers a duration flag (time.ParseDuration syntax) stored in *p.
func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, def, usage)
	f.record(name, "duration", formatDuration(def), usage)
}

// StringList registers a comma-separated list stored in *p. Giving the flag
// replaces the default; giving it again appends, so
// --token-keys a.pem --token-keys b.pem and --token-keys a.pem,b.pem agree.
// Items are trimmed and empty items dropped.
func (f *flagSet) StringList(p *[]string, name string, def []string, usage string) {
	*p = slices.Clone(def)
	f.fs.Var(&stringList{p: p}, name, usage)
	f.record(name, "list", strings.Join(def, ","), usage)
}

var flagName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

func (f *flagSet) record(name, kind, def, usage string) {
	// A name outside this form would give an ambiguous environment
	// variable; it is a programming error, caught by any test that builds
	// the flag sets.
	if !flagName.MatchString(name) {
		panic(fmt.Sprintf("app: flag name %q of %s is not lower-case words joined by hyphens", name, f.cmd))
	}
	f.docs = append(f.docs, flagDoc{name: name, env: envName(name), kind: kind, def: def, usage: usage})
}

// envName returns the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args, then sets every flag not given in args whose
// environment variable, looked up with env, is not empty. An environment
// value goes through the same parser as the flag, and a bad one is an error
// naming the variable. env may be nil (no environment). -h returns
// flag.ErrHelp after writing the usage to stderr; the flag package also
// writes other command-line errors there.
func (f *flagSet) Parse(args []string, env func(string) string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if env == nil {
		return nil
	}
	given := make(map[string]bool)
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, d := range f.docs {
		if given[d.name] {
			continue
		}
		v := env(d.env)
		if v == "" {
			continue
		}
		if err := f.fs.Set(d.name, v); err != nil {
			return fmt.Errorf("environment variable %s=%q: invalid value for --%s (%s): %v", d.env, v, d.name, d.kind, err)
		}
	}
	return nil
}

// Args returns the arguments left after the flags.
func (f *flagSet) Args() []string { return f.fs.Args() }

func (f *flagSet) writeUsage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: tandem %s [flags]\n", f.cmd)
	if f.summary != "" {
		fmt.Fprintf(&b, "\n%s\n", f.summary)
	}
	if len(f.docs) == 0 {
		b.WriteString("\nNo flags.\n")
	} else {
		b.WriteString("\nFlags (a flag not given is read from its environment variable):\n")
	}
	for _, d := range f.docs {
		fmt.Fprintf(&b, "  --%s %s\t(%s, default %q)\n    \t%s\n", d.name, d.kind, d.env, d.def, d.usage)
	}
	io.WriteString(w, b.String())
}

// stringList is the flag.Value of StringList.
type stringList struct {
	p   *[]string
	set bool // given at least once; the first Set replaces the default
}

func (l *stringList) String() string {
	if l == nil || l.p == nil { // the flag package calls String on a zero value
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *stringList) Set(s string) error {
	if !l.set {
		*l.p = nil
		l.set = true
	}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l.p = append(*l.p, item)
		}
	}
	return nil
}

// formatDuration writes d the way a person types it: 10m, not 10m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// configDoc renders docs/config.md: one section per subcommand with a table
// of its flags, in registration order.
func configDoc(sets []*flagSet) string {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from app/flags.go by: go test ./app -run TestConfigDocMatchesFlags -update
     Do not edit by hand; a test fails when this file and the flags differ. -->

Every flag can also be set with an environment variable: ` + "`TANDEM_`" + ` followed by the flag's name in
upper case with underscores, so ` + "`--max-frame-bytes`" + ` is ` + "`TANDEM_MAX_FRAME_BYTES`" + `. A flag given on the command
line wins over its environment variable, which wins over the default; an empty variable counts as unset.

Values: durations are Go durations (` + "`250ms`, `30s`, `10m`, `1h30m`" + `); booleans are ` + "`true`/`false`" + `
(or ` + "`1`/`0`" + `); lists are comma-separated, and a list flag may also be repeated.
`)
	for _, f := range sets {
		fmt.Fprintf(&b, "\n## tandem %s\n\n", f.cmd)
		if f.summary != "" {
			fmt.Fprintf(&b, "%s\n\n", f.summary)
		}
		if len(f.docs) == 0 {
			b.WriteString("No flags.\n")
			continue
		}
		b.WriteString("| Flag | Environment variable | Type | Default | Meaning |\n")
		b.WriteString("|---|---|---|---|---|\n")
		for _, d := range f.docs {
			def := ""
			if d.def != "" {
				def = "`" + d.def + "`"
			}
			fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s | %s |\n",
				d.name, d.env, d.kind, def, strings.ReplaceAll(d.usage, "|", `\|`))
		}
	}
	return b.String()
}

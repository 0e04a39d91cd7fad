package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the project's module path. A pattern starting with "." is
// relative to it: "." is the root package, "./room/..." is room and every
// package below it. Any other pattern is an import path, with "/..." for
// the packages below it too.
const module = "github.com/tandemhq/tandem"

// rule is one dependency rule. A package matching from (and not except)
// breaks it by depending, directly or through other packages, on a package
// matching forbid but not allow, or on packages of both sides.
type rule struct {
	name   string
	from   []string
	except []string
	forbid []string
	allow  []string
	sides  [2][]string
}

var (
	realtimeSide = []string{"./gateway/...", "./session/...", "./room/..."}
	webSide      = []string{"./web/...", "./admin/...", "./service/...", "./sqlite/...", "./postgres/...", "./storetest/..."}
	webSockets   = []string{
		"github.com/gobwas/ws/...", "github.com/coder/websocket/...", "nhooyr.io/websocket/...",
		"github.com/lxzan/gws/...", "github.com/gorilla/websocket/...", "golang.org/x/net/websocket/...",
	}
	// Not database/sql itself: harmless packages such as Prometheus's Go
	// collectors import it for its statistics types.
	databaseDrivers = []string{
		"modernc.org/sqlite/...", "github.com/mattn/go-sqlite3/...", "github.com/jackc/...", "github.com/lib/pq/...",
	}
	busClients = []string{"github.com/nats-io/..."}
)

// rules are the dependency rules of DESIGN.md, one row each. Packages that
// do not exist yet match nothing and are simply not checked.
var rules = []rule{
	{
		name:   "the root package imports nothing of the project",
		from:   []string{"."},
		forbid: []string{"./..."},
	},
	{
		name:   "matchmaker/ is pure: no network, database or bus of its own (matchmaker/service/ feeds it)",
		from:   []string{"./matchmaker/..."},
		except: []string{"./matchmaker/service/..."},
		forbid: concat(
			[]string{"./natsbus/...", "./matchmaker/service/...", "./faultproxy/...", "./observe/...", "./app/..."},
			realtimeSide, webSide,
			[]string{"net", "crypto/tls", "os/exec", "database/sql/..."}, databaseDrivers, busClients, webSockets,
		),
	},
	{
		name:   "room/ knows nothing of WebSockets",
		from:   []string{"./room/..."},
		forbid: concat([]string{"./gateway/..."}, webSockets),
	},
	{
		name: "the realtime side never touches the database or the web server",
		from: []string{"./gateway/...", "./session/...", "./room/...", "./matchmaker/..."},
		// service/ is on the list too: it is the web server's way to the
		// database (matchmaker/service/ is a different package).
		forbid: concat([]string{"./sqlite/...", "./postgres/...", "./web/...", "./admin/...", "./service/..."}, databaseDrivers),
	},
	{
		name:   "the web side never imports the realtime packages",
		from:   webSide,
		forbid: realtimeSide,
	},
	{
		name:   "the stores only store: sqlite/ and postgres/ never reach the service layer or HTTP",
		from:   []string{"./sqlite/...", "./postgres/...", "./storetest/..."},
		forbid: []string{"./service/...", "./web/...", "./admin/...", "./app/..."},
	},
	{
		name:   "SQL lives in the stores: service/, web/ and admin/ use no database driver",
		from:   []string{"./service/...", "./web/...", "./admin/..."},
		forbid: concat([]string{"./sqlite/...", "./postgres/...", "database/sql/..."}, databaseDrivers),
	},
	{
		name:   "sdk/go imports only protocol/ of the project",
		from:   []string{"./sdk/go/..."},
		forbid: []string{"./..."},
		allow:  []string{"./sdk/go/...", "./protocol/..."},
	},
	{
		name:   "only app/, cmd/ and examples/ import both sides",
		from:   []string{"./..."},
		except: []string{"./app/...", "./cmd/...", "./examples/..."},
		sides:  [2][]string{realtimeSide, webSide},
	},
}

func TestDependencyRules(t *testing.T) {
	g := loadGraph(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			for _, v := range g.check(r) {
				t.Errorf("%s", v)
			}
		})
	}
}

// TestRulesCatchWhatTheyForbid proves each rule on a made-up import graph,
// so that a rule that matches nothing cannot pass unnoticed.
func TestRulesCatchWhatTheyForbid(t *testing.T) {
	p := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		rule  string // prefix of the rule's name
		edges [][2]string
		want  []string // expected violations, each an import chain
	}{
		{
			rule:  "the root package",
			edges: [][2]string{{module, "fmt"}, {module, p("protocol")}},
			want:  []string{module + " -> " + p("protocol")},
		},
		{
			rule: "matchmaker/ is pure",
			edges: [][2]string{
				{p("matchmaker"), p("observe")}, {p("observe"), "net/http"}, {"net/http", "net"},
				{p("matchmaker/service"), p("natsbus")}, // allowed: the service does the I/O
				{p("matchmaker/queue"), "database/sql"},
			},
			want: []string{
				p("matchmaker") + " -> " + p("observe"),
				p("matchmaker/queue") + " -> database/sql",
			},
		},
		{
			rule: "matchmaker/ is pure",
			edges: [][2]string{
				{p("matchmaker"), "github.com/example/util"}, {"github.com/example/util", "net"},
			},
			want: []string{p("matchmaker") + " -> github.com/example/util -> net"},
		},
		{
			rule: "room/ knows nothing of WebSockets",
			edges: [][2]string{
				{p("room"), p("room/arena")}, {p("room/arena"), "github.com/gobwas/ws/wsutil"},
				{p("room/relay"), p("gateway")},
			},
			want: []string{
				p("room") + " -> " + p("room/arena") + " -> github.com/gobwas/ws/wsutil",
				p("room/arena") + " -> github.com/gobwas/ws/wsutil",
				p("room/relay") + " -> " + p("gateway"),
			},
		},
		{
			rule:  "the realtime side",
			edges: [][2]string{{p("session"), p("natsbus")}, {p("natsbus"), p("service")}},
			want:  []string{p("session") + " -> " + p("natsbus") + " -> " + p("service")},
		},
		{
			rule:  "the web side",
			edges: [][2]string{{p("admin"), p("service")}, {p("service"), p("room")}},
			want: []string{
				p("admin") + " -> " + p("service") + " -> " + p("room"),
				p("service") + " -> " + p("room"),
			},
		},
		{
			rule:  "the stores only store",
			edges: [][2]string{{p("sqlite"), module}, {p("postgres"), p("service")}},
			want:  []string{p("postgres") + " -> " + p("service")},
		},
		{
			rule:  "SQL lives in the stores",
			edges: [][2]string{{p("service"), module}, {p("web"), p("sqlite")}, {p("admin"), "github.com/jackc/pgx/v5"}},
			want:  []string{p("admin") + " -> github.com/jackc/pgx/v5", p("web") + " -> " + p("sqlite")},
		},
		{
			rule:  "sdk/go imports only protocol/",
			edges: [][2]string{{p("sdk/go"), p("protocol")}, {p("sdk/go"), p("sdk/go/internal/backoff")}, {p("sdk/go/internal/backoff"), module}},
			want:  []string{p("sdk/go") + " -> " + p("sdk/go/internal/backoff") + " -> " + module, p("sdk/go/internal/backoff") + " -> " + module},
		},
		{
			rule: "only app/, cmd/ and examples/ import both sides",
			edges: [][2]string{
				{p("app"), p("gateway")}, {p("app"), p("web")},
				{p("cmd/tandem"), p("app")},
				{p("natsbus/bridge"), p("session")}, {p("natsbus/bridge"), p("service")},
			},
			want: []string{
				p("natsbus/bridge") + " depends on both sides: " + p("natsbus/bridge") + " -> " + p("session") +
					" and " + p("natsbus/bridge") + " -> " + p("service"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			r := findRule(t, tt.rule)
			g := graph{imports: map[string][]string{}}
			for _, e := range tt.edges {
				g.imports[e[0]] = append(g.imports[e[0]], e[1])
				for _, path := range e {
					if strings.HasPrefix(path, module) && !slices.Contains(g.project, path) {
						g.project = append(g.project, path)
					}
				}
			}
			slices.Sort(g.project)
			var got []string
			for _, v := range g.check(r) {
				_, chain, _ := strings.Cut(v, "\n\t")
				got = append(got, chain)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

func findRule(t *testing.T, prefix string) rule {
	t.Helper()
	for _, r := range rules {
		if strings.HasPrefix(r.name, prefix) {
			return r
		}
	}
	t.Fatalf("no rule named %q...", prefix)
	return rule{}
}

// graph is the import graph of the module's packages and their dependencies.
type graph struct {
	project []string            // the module's packages, sorted
	imports map[string][]string // direct imports of every package, project or not
}

// loadGraph asks go list for the graph of every package of the module.
func loadGraph(t *testing.T) graph {
	t.Helper()
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,DepOnly,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", root, err, stderr.Bytes())
	}
	g := graph{imports: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			DepOnly    bool
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			// Broken packages are the build's business; their imports are
			// still checked as far as go list could read them.
			t.Logf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		g.imports[p.ImportPath] = p.Imports
		if !p.DepOnly && matches(p.ImportPath, "./...") {
			g.project = append(g.project, p.ImportPath)
		}
	}
	slices.Sort(g.project)
	if !slices.Contains(g.project, module) {
		t.Fatalf("go list did not report the root package %s; found %d project packages", module, len(g.project))
	}
	return g
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatalf("not inside a module (go env GOMOD = %q)", gomod)
	}
	return filepath.Dir(gomod)
}

// check returns a message for every package that breaks r.
func (g graph) check(r rule) []string {
	var violations []string
	for _, pkg := range g.project {
		if !matchesAny(pkg, r.from) || matchesAny(pkg, r.except) {
			continue
		}
		if len(r.forbid) > 0 {
			forbidden := func(dep string) bool {
				return dep != pkg && matchesAny(dep, r.forbid) && !matchesAny(dep, r.allow)
			}
			// The search stops at a forbidden package: what it imports in
			// turn is its own business, and one line per cause is enough.
			parent := g.reach(pkg, forbidden)
			for _, dep := range sortedKeys(parent) {
				if forbidden(dep) {
					violations = append(violations, fmt.Sprintf("%s breaks the rule %q:\n\t%s",
						pkg, r.name, chain(parent, pkg, dep)))
				}
			}
		}
		if len(r.sides[0]) > 0 {
			parent := g.reach(pkg, func(string) bool { return false })
			a, b := firstMatch(parent, r.sides[0]), firstMatch(parent, r.sides[1])
			if a != "" && b != "" {
				violations = append(violations, fmt.Sprintf("%s breaks the rule %q:\n\t%s depends on both sides: %s and %s",
					pkg, r.name, pkg, chain(parent, pkg, a), chain(parent, pkg, b)))
			}
		}
	}
	return violations
}

// reach walks the imports from pkg breadth first, so every chain found is a
// shortest one, without going through packages for which stop is true. It
// returns every package reached, pkg included, mapped to the package that
// imports it on the way from pkg.
func (g graph) reach(pkg string, stop func(string) bool) map[string]string {
	parent := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != pkg && stop(p) {
			continue
		}
		for _, imp := range g.imports[p] {
			if _, seen := parent[imp]; !seen {
				parent[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return parent
}

func chain(parent map[string]string, from, to string) string {
	path := []string{to}
	for p := to; p != from; {
		p = parent[p]
		path = append(path, p)
	}
	slices.Reverse(path)
	return strings.Join(path, " -> ")
}

func firstMatch(parent map[string]string, patterns []string) string {
	for _, p := range sortedKeys(parent) {
		if matchesAny(p, patterns) {
			return p
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func matchesAny(path string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(pattern string) bool { return matches(path, pattern) })
}

// matches reports whether import path matches pattern (see module).
func matches(path, pattern string) bool {
	if pattern == "." || strings.HasPrefix(pattern, "./") {
		pattern = module + strings.TrimPrefix(pattern, ".")
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func concat(lists ...[]string) []string { return slices.Concat(lists...) }

package protocol_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// These tests keep docs/protocol.md, which every SDK is written from, in step
// with the code tables.

const protocolDoc = "../docs/protocol.md"

// docTable returns the rows of the first table after the heading with this
// title (numbered or not: "## 11. Error codes"), as maps from column name to
// cell.
func docTable(t *testing.T, title string) []map[string]string {
	t.Helper()
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(doc), "\n")
	heading := regexp.MustCompile(`^#+\s+(\d+(\.\d+)*\.?\s+)?` + regexp.QuoteMeta(title) + `\s*$`)
	start := -1
	for i, l := range lines {
		if heading.MatchString(l) {
			start = i + 1
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s has no heading %q", protocolDoc, title)
	}
	for start < len(lines) && !strings.HasPrefix(lines[start], "|") {
		if strings.HasPrefix(lines[start], "#") {
			t.Fatalf("%s: no table under %q", protocolDoc, title)
		}
		start++
	}
	cells := func(l string) []string {
		cs := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		for i := range cs {
			cs[i] = strings.Trim(strings.TrimSpace(cs[i]), "`")
		}
		return cs
	}
	if start+1 >= len(lines) {
		t.Fatalf("%s: table under %q has no rows", protocolDoc, title)
	}
	header := cells(lines[start])
	var rows []map[string]string
	for _, l := range lines[start+2:] { // after the header and its |---| line
		if !strings.HasPrefix(l, "|") {
			break
		}
		cs := cells(l)
		if len(cs) != len(header) {
			t.Errorf("%s: row %q has %d cells, the header %d", protocolDoc, l, len(cs), len(header))
			continue
		}
		row := map[string]string{}
		for i, h := range header {
			row[h] = cs[i]
		}
		rows = append(rows, row)
	}
	return rows
}

func TestDocsListEveryErrorCode(t *testing.T) {
	type code struct {
		Code      uint32
		Name      string
		Temporary bool
	}
	var want []code
	for _, c := range tandem.ErrorCodes() {
		want = append(want, code{uint32(c), c.String(), c.Temporary()})
	}
	var got []code
	for _, row := range docTable(t, "Error codes") {
		n, err := strconv.ParseUint(row["code"], 10, 32)
		if err != nil {
			t.Errorf("error code %q: %v", row["code"], err)
		}
		// The meaning says "(temporary)" exactly for the codes whose
		// error frames carry temporary: true.
		got = append(got, code{uint32(n), row["name"], strings.Contains(row["meaning"], "(temporary)")})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error codes (-code +%s):\n%s", protocolDoc, diff)
	}
}

func TestDocsListEveryCloseCode(t *testing.T) {
	type code struct {
		Code  uint16
		Name  string
		Class string
	}
	var want []code
	for _, c := range protocol.CloseCodes() {
		want = append(want, code{uint16(c), c.String(), c.Class().String()})
		if named, ok := protocol.CloseCodeNamed(c.String()); !ok || named != c {
			t.Errorf("CloseCodeNamed(%q) = %d, %v; want %d", c, named, ok, c)
		}
	}
	var got []code
	for _, row := range docTable(t, "Close codes") {
		n, err := strconv.ParseUint(row["code"], 10, 16)
		if err != nil {
			t.Errorf("close code %q: %v", row["code"], err)
		}
		got = append(got, code{uint16(n), row["name"], row["class"]})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("close codes (-code +%s):\n%s", protocolDoc, diff)
	}
}

// Every relative link of the doc (the .proto, the test vectors, config.md)
// names a file or directory that exists.
func TestDocsLinksResolve(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(string(doc), -1)
	n := 0
	for _, m := range links {
		target, _, _ := strings.Cut(m[1], "#")
		if target == "" || strings.Contains(target, "://") {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(filepath.Dir(protocolDoc), target)); err != nil {
			t.Errorf("%s links %s: %v", protocolDoc, m[1], err)
		}
	}
	if n == 0 {
		t.Errorf("%s has no relative links; it should link the .proto and the test vectors", protocolDoc)
	}
}

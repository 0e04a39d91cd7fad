package protocol_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/vectors and the fuzz seed corpus in testdata/fuzz")

const vectorDir = "testdata/vectors"

// The test vectors are for every SDK (docs/protocol.md links them; see
// testdata/vectors/README.md). For each example NAME:
//
//	NAME.json   the envelope as the JSON codec writes it (indented)
//	NAME.bin    the envelope as the binary codec writes it
//
// and a few variants, NAME.VARIANT.json or .bin, that must decode to the same
// envelope: with unknown fields, in lenient JSON. A test compares what each
// file decodes to with the example: parsed values, never bytes.
func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	files, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range files {
		name := f.Name()
		var id protocol.CodecID
		switch filepath.Ext(name) {
		case ".json":
			id = protocol.CodecJSON
		case ".bin":
			id = protocol.CodecBinary
		default:
			continue
		}
		found[name] = true
		stem, _, _ := strings.Cut(name, ".")
		want, ok := exampleByName(stem)
		if !ok {
			t.Errorf("%s: no example %q", name, stem)
			continue
		}
		data, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		got := new(protocol.Envelope)
		if err := id.Codec().Unmarshal(data, got); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	for _, v := range vectors(t) {
		if !found[v.file] {
			t.Errorf("%s/%s is missing (go test ./protocol -run TestVectors -update)", vectorDir, v.file)
		}
	}
}

type vector struct {
	file string
	data []byte
}

// vectors returns every vector file with the content -update writes.
func vectors(t testing.TB) []vector {
	var vs []vector
	for _, ex := range examples() {
		vs = append(vs,
			vector{ex.name + ".json", indentJSON(t, marshal(t, protocol.CodecJSON, ex.env))},
			vector{ex.name + ".bin", deterministic(t, ex.env)})
	}
	for _, name := range []string{"room_message", "connect", "gap"} {
		env, _ := exampleByName(name)
		vs = append(vs,
			vector{name + ".unknown.json", indentJSON(t, withUnknownKeys(t, env))},
			vector{name + ".unknown.bin", withNestedUnknown(t, env)})
	}
	vs = append(vs, vector{"join.lenient.json", []byte(lenientJoinJSON)})
	return vs
}

// deterministic is the binary encoding with map entries sorted, so that
// -update rewrites the same bytes (any order decodes the same).
func deterministic(t testing.TB, env *protocol.Envelope) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// indentJSON gives protojson's output (whose spacing varies on purpose) a
// stable, readable form.
func indentJSON(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func writeVectors(t *testing.T) {
	if err := os.MkdirAll(vectorDir, 0o755); err != nil {
		t.Fatal(err)
	}
	vs := vectors(t)
	keep := map[string]bool{}
	for _, v := range vs {
		keep[v.file] = true
		if err := os.WriteFile(filepath.Join(vectorDir, v.file), v.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Remove vectors of examples that are gone.
	files, _ := os.ReadDir(vectorDir)
	for _, f := range files {
		if ext := filepath.Ext(f.Name()); (ext == ".json" || ext == ".bin") && !keep[f.Name()] {
			if err := os.Remove(filepath.Join(vectorDir, f.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("wrote %d vectors to %s", len(vs), vectorDir)
}

package conformance_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// protocolVectors is where the vectors are generated (go test ./protocol
// -run TestVectors -update); vectors/ is the copy SDKs read.
const protocolVectors = "../protocol/testdata/vectors"

// TestVectorsMatchTheProtocolPackage checks that vectors/ holds exactly the
// vectors of protocol/testdata/vectors: the same file names, .bin files
// byte for byte, .json files as parsed values (protojson's spacing is not
// stable). After regenerating them there, copy them here:
//
//	cp protocol/testdata/vectors/*.bin protocol/testdata/vectors/*.json conformance/vectors/
func TestVectorsMatchTheProtocolPackage(t *testing.T) {
	want, got := vectorFiles(t, protocolVectors), vectorFiles(t, "vectors")
	if !slices.Equal(got, want) {
		t.Fatalf("conformance/vectors has %v,\nprotocol/testdata/vectors has %v\n(copy them: see this test's comment)", got, want)
	}
	for _, name := range want {
		a := read(t, filepath.Join(protocolVectors, name))
		b := read(t, filepath.Join("vectors", name))
		if filepath.Ext(name) == ".bin" {
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs from the protocol package's", name)
			}
			continue
		}
		var va, vb any
		if err := json.Unmarshal(a, &va); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := json.Unmarshal(b, &vb); err != nil {
			t.Errorf("vectors/%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(va, vb) {
			t.Errorf("%s differs from the protocol package's (as parsed JSON)", name)
		}
	}
}

func vectorFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext == ".bin" || ext == ".json" {
			out = append(out, e.Name())
		}
	}
	return out
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

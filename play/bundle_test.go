package play_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestCommittedBundleIsTheBuildOfTheSources rebuilds dist/ with the
// documented command, `npm run build:play` in sdk/ts, and fails when the
// committed files differ: the binary embeds dist/, so a source change
// without its build would serve the old game.
//
// It builds in a copy of the sources it needs with the exact packages of
// sdk/ts/package-lock.json (npm ci), so it neither needs nor touches the
// working tree's node_modules, and writes to a temporary directory.
func TestCommittedBundleIsTheBuildOfTheSources(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("npm is required under CI (.ci/run installs it): %v", err)
		}
		t.Skipf("no npm: %v", err)
	}
	root := t.TempDir()
	for _, p := range []string{"sdk/ts/package.json", "sdk/ts/package-lock.json", "sdk/ts/src", "play/src", "play/tsconfig.json"} {
		copyTree(t, filepath.Join("..", p), filepath.Join(root, p))
	}
	sdk := filepath.Join(root, "sdk", "ts")
	out := filepath.Join(root, "out")
	runNPM(t, npm, sdk, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	runNPM(t, npm, sdk, "run", "build:play", "--silent", "--", "--outdir="+out)

	built, committed := readTree(t, out), readTree(t, "dist")
	for _, name := range sortedKeys(built, committed) {
		switch b, c := built[name], committed[name]; {
		case c == nil:
			t.Errorf("the build makes %s, which play/dist lacks", name)
		case b == nil:
			t.Errorf("play/dist/%s is not made by the build", name)
		case !bytes.Equal(b, c):
			t.Errorf("play/dist/%s differs from the build (%d bytes built, %d committed)", name, len(b), len(c))
		}
	}
	if t.Failed() {
		t.Log("Rebuild it with: (cd sdk/ts && npm ci && npm run build:play), and commit play/dist")
	}
}

func runNPM(t *testing.T, npm, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(npm, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %v: %v\n%s", args, err, out)
	}
}

// copyTree copies the file or directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readTree returns every file under dir by its path relative to dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sortedKeys(ms ...map[string][]byte) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

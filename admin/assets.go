package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/tandemhq/tandem"
)

// assetFS holds every file the pages load, so the UI works with no
// internet. assets/htmx.min.js is htmx.org 2.0.11's dist/htmx.min.js,
// unchanged (Zero-Clause BSD: assets/LICENSE-htmx).
//
//go:embed assets
var assetFS embed.FS

// asset is one embedded file with its fingerprint.
type asset struct {
	data []byte
	tag  string // the first 12 hex digits of its SHA-256
}

// assetSet is every embedded asset by name. Pages link to them with the
// fingerprint in the query, so the long cache lifetime never serves a
// stale file after an upgrade.
type assetSet struct {
	files map[string]asset
}

func newAssetSet() *assetSet {
	s := &assetSet{files: map[string]asset{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		s.files[path.Base(p)] = asset{data: data, tag: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing to read them is a broken build.
		panic("admin: reading embedded assets: " + err.Error())
	}
	return s
}

// url returns the fingerprinted path of an asset.
func (s *assetSet) url(name string) string {
	a, ok := s.files[name]
	if !ok {
		panic("admin: template names unknown asset " + name)
	}
	return "/admin/assets/" + name + "?v=" + a.tag
}

// assetCacheControl lets browsers keep an asset for a year: its URL changes
// when its content does.
const assetCacheControl = "public, max-age=31536000, immutable"

func (u *ui) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	a, ok := u.assets.files[name]
	if !ok {
		u.fail(w, r, tandem.Errorf(tandem.ENotFound, "no such file"))
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "text/plain; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", assetCacheControl)
	h.Set("ETag", `"`+a.tag+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
}

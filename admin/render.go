package admin

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

//go:embed templates
var templateFS embed.FS

// pageSet is every page template, each parsed together with the layout and
// the shared partials so it can define "content" (and fragments) of its own.
type pageSet struct {
	pages map[string]*template.Template
}

func newPageSet(assets *assetSet) *pageSet {
	base := template.Must(template.New("").Funcs(templateFuncs(assets)).
		ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	s := &pageSet{pages: map[string]*template.Template{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		s.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, f))
	}
	return s
}

// isFragment reports whether an htmx request may ask for the template
// name by target id: the main region of every page, and the result tables
// of the audit log and the player search, and the polled tables of the
// live console.
func isFragment(name string) bool {
	return name == "main" || name == "audit-results" || name == "player-results" || slices.Contains(liveFragments, name) ||
		slices.Contains(matchmakingFragments, name)
}

// page is what the layout renders around every page's content.
type page struct {
	Title string
	// Active is the navigation path to mark as the current page.
	Active string
	Actor  *service.Actor
	Nav    []navItem
	// Bare pages (login, MFA steps, errors before login) have no navigation.
	Bare   bool
	Notice string
	Form   *Form
	Data   any
}

// FormFor returns the submitted state of the form named key, or an empty
// form when another form (or none) was submitted.
func (p *page) FormFor(key string) *Form {
	if p.Form != nil && p.Form.Key == key {
		return p.Form
	}
	return &Form{Key: key}
}

// Form is a submitted form being shown again: the values typed (never
// passwords) and what is wrong with them.
type Form struct {
	// Key tells the forms of one page apart ("create", "admin-7-role").
	Key    string
	Values url.Values
	// Errors maps a field name to its message.
	Errors map[string]string
	// Error is a message about the form as a whole.
	Error string
}

// Value returns the submitted value of a field.
func (f *Form) Value(name string) string { return f.Values.Get(name) }

// Err returns the message for a field, or "".
func (f *Form) Err(name string) string { return f.Errors[name] }

// Has reports whether the field was submitted with this value (checkboxes).
func (f *Form) Has(name, value string) bool {
	for _, v := range f.Values[name] {
		if v == value {
			return true
		}
	}
	return false
}

// Submitted reports whether this form is being shown again.
func (f *Form) Submitted() bool { return f.Values != nil }

// formFromError builds the form state to show again after err.
func formFromError(key string, values url.Values, err error) *Form {
	f := &Form{Key: key, Values: values, Errors: map[string]string{}}
	var te *tandem.Error
	if errors.As(err, &te) && te.Code == tandem.EValidation && len(te.Fields) > 0 {
		for _, fe := range te.Fields {
			if _, dup := f.Errors[fe.Field]; !dup {
				f.Errors[fe.Field] = fe.Message
			}
		}
		f.Error = "Check the highlighted fields."
		return f
	}
	f.Error = tandem.ErrorMessageOf(err)
	return f
}

type navItem struct {
	Path, Label string
	Current     bool
}

// navFor lists the pages a may use: a link to a page it would be refused
// is not shown at all.
func navFor(a *service.Actor, active string) []navItem {
	all := []struct {
		path, label string
		perm        tandem.Permission
	}{
		{"/admin", "Overview", ""},
		{"/admin/players", "Players", tandem.PermPlayersRead},
		{"/admin/nodes", "Nodes", tandem.PermRoomsRead},
		{"/admin/rooms", "Rooms", tandem.PermRoomsRead},
		{"/admin/commands", "Commands", tandem.PermRoomsRead},
		{"/admin/matchmaking", "Matchmaking", tandem.PermRoomsRead},
		{"/admin/admins", "Admins", tandem.PermAdminsManage},
		{"/admin/roles", "Roles", ""},
		{"/admin/api-keys", "API keys", tandem.PermAdminsManage},
		{"/admin/audit", "Audit log", tandem.PermAuditRead},
		{"/admin/account", "Account", ""},
	}
	var out []navItem
	for _, it := range all {
		if it.perm == "" || a.Can(it.perm) {
			out = append(out, navItem{Path: it.path, Label: it.label, Current: it.path == active})
		}
	}
	return out
}

// isHTMX reports whether htmx sent the request and will swap a fragment of
// the answer in. A history restore wants the whole page.
func isHTMX(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-History-Restore-Request") != "true"
}

// render writes page name with status: the whole page, or for htmx the
// fragment its target names.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.Actor == nil {
		p.Actor = web.ActorFrom(r.Context())
	}
	if p.Actor == nil || p.Actor.MFAOutstanding() != "" {
		p.Bare = true
	}
	if !p.Bare {
		p.Nav = navFor(p.Actor, p.Active)
	}
	if p.Notice == "" {
		p.Notice = noticeOf(r.URL.Query())
	}
	t, ok := u.pages.pages[name]
	if !ok {
		panic("admin: no page template " + name)
	}
	tmpl := "layout"
	if isHTMX(r) {
		if p.Bare && r.Method == http.MethodGet {
			// htmx followed a redirect to a login or MFA page: that page
			// needs a full load, not a swap into the page it came from.
			u.hxRedirect(w, r.URL.RequestURI())
			return
		}
		target := r.Header.Get("HX-Target")
		tmpl = "main"
		if isFragment(target) && t.Lookup(target) != nil {
			tmpl = target
		}
		if tmpl != "main" && status >= 400 {
			// The error belongs next to the form, which the fragment lacks.
			tmpl = "main"
		}
		if tmpl == "main" && target != "main" {
			w.Header().Set("HX-Retarget", "#main")
			w.Header().Set("HX-Reswap", "innerHTML")
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		u.log.Error("admin: rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (u *ui) hxRedirect(w http.ResponseWriter, to string) {
	w.Header().Set("HX-Redirect", to)
	w.WriteHeader(http.StatusNoContent)
}

// seeOther ends a successful form post: 303 for a plain browser post, a
// full navigation for htmx (the page after it may have another layout).
func (u *ui) seeOther(w http.ResponseWriter, r *http.Request, to string) {
	if isHTMX(r) {
		u.hxRedirect(w, to)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// parseForm reads a posted form, answering a broken or oversized body.
func (u *ui) parseForm(w http.ResponseWriter, r *http.Request) bool {
	err := r.ParseForm()
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		u.fail(w, r, tandem.Errorf(tandem.ETooLarge, "the form is too large"))
	} else {
		u.fail(w, r, tandem.Errorf(tandem.EInvalid, "the form could not be read"))
	}
	return false
}

// formError answers a form post the service refused. Problems with what
// was typed show the page again with the form's errors; a missing password
// confirmation shows the reauth form, which returns to back; anything else
// is an error page.
func (u *ui) formError(w http.ResponseWriter, r *http.Request, err error, key, back string, show func(f *Form, status int)) {
	code := tandem.ErrorCodeOf(err)
	switch code {
	case tandem.EValidation, tandem.EConflict, tandem.ERateLimited, tandem.EInvalid, tandem.EPermission:
		// A permission refused by the work itself (granting more than one
		// holds) belongs next to the form, with what was typed kept.
		show(formFromError(key, r.PostForm, err), code.HTTPStatus())
	case tandem.EReauthRequired:
		u.reauthView(w, r, nil, code.HTTPStatus(), back)
	default:
		u.fail(w, r, err)
	}
}

// errorData is the error page's content.
type errorData struct {
	Status    int
	Message   string
	Fields    []tandem.FieldError
	RequestID string
	LoginURL  string
}

// fail renders err as an error page (it is also web/'s HTMLError). Only
// the client-safe message is shown; an internal error is logged here.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := tandem.ErrorCodeOf(err)
	if code == tandem.EInternal {
		u.log.Error("admin: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	a := web.ActorFrom(r.Context())
	switch code {
	case tandem.EUnauthenticated:
		login := "/admin/login"
		if next := localNext(currentPage(r)); next != "" {
			login += "?next=" + url.QueryEscape(next)
		}
		if isHTMX(r) {
			u.hxRedirect(w, login)
			return
		}
		if r.Method == http.MethodGet {
			http.Redirect(w, r, login, http.StatusSeeOther)
			return
		}
		u.render(w, r, code.HTTPStatus(), "error", &page{Title: "Log in again", Bare: true,
			Data: errorData{Status: code.HTTPStatus(), Message: tandem.ErrorMessageOf(err), LoginURL: login}})
		return
	case tandem.EMFARequired:
		u.seeOther(w, r, mfaPath(a))
		return
	}
	d := errorData{Status: code.HTTPStatus(), Message: tandem.ErrorMessageOf(err), RequestID: w.Header().Get("X-Request-Id")}
	var te *tandem.Error
	if errors.As(err, &te) {
		d.Fields = te.Fields
	}
	if code == tandem.EInternal {
		d.Message = "Something went wrong on the server. It has been logged; try again, and if it keeps happening, quote the reference below."
	}
	u.render(w, r, d.Status, "error", &page{Title: errorTitle(code), Data: d})
}

func errorTitle(code tandem.ErrorCode) string {
	switch code {
	case tandem.EPermission:
		return "Not allowed"
	case tandem.ENotFound:
		return "Not found"
	case tandem.EValidation, tandem.EInvalid:
		return "Invalid request"
	case tandem.ETooLarge:
		return "Too large"
	case tandem.ERateLimited:
		return "Too many requests"
	case tandem.EConflict:
		return "Cannot do that now"
	case tandem.EInternal:
		return "Something went wrong"
	}
	return "Request failed"
}

// mfaPath is where an actor with MFA outstanding goes.
func mfaPath(a *service.Actor) string {
	if a.MFAOutstanding() == service.MFAEnrol {
		return "/admin/mfa/enrol"
	}
	return "/admin/mfa"
}

// currentPage is the page the browser shows: for htmx the page that made
// the request, otherwise the request itself.
func currentPage(r *http.Request) string {
	if cur := r.Header.Get("HX-Current-URL"); cur != "" {
		if u, err := url.Parse(cur); err == nil {
			return u.RequestURI()
		}
		return ""
	}
	if r.Method != http.MethodGet {
		return ""
	}
	return r.URL.RequestURI()
}

// localNext returns s if it is a path of the admin UI, else "": a login
// link must not send the admin to another site.
func localNext(s string) string {
	if s == "" || strings.ContainsAny(s, "\\\x00\r\n\t") {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	if u.Path != "/admin" && !strings.HasPrefix(u.Path, "/admin/") {
		return ""
	}
	return s
}

// noticeText turns the "done" query parameter of a redirect after a
// successful post into a fixed message (never text from the URL).
func noticeText(key string) string {
	switch key {
	case "logged-out":
		return "You are logged out."
	case "admin-created":
		return "Admin created."
	case "admin-updated":
		return "Admin updated."
	case "role-created":
		return "Role created."
	case "role-saved":
		return "Role saved. Admins holding it get the change on their next request."
	case "role-deleted":
		return "Role deleted."
	case "key-revoked":
		return "API key revoked."
	case "password-changed":
		return "Password changed. Your other sessions have ended."
	case "reauthenticated":
		return "Password confirmed. You can make sensitive changes for a few minutes."
	case "enrolment-started":
		return "Scan the new code, then enter a code from your app to finish."
	case "player-saved":
		return "Player saved."
	case "player-banned":
		return "Ban added. The player's sessions stay open, but every use of them is refused while it lasts."
	case "ban-lifted":
		return "Ban lifted."
	case "player-logged-out":
		return "Every session of the player has ended."
	case "note-added":
		return "Note added."
	case "queue-saved":
		return "Queue saved. Realtime nodes get it within seconds."
	case "queue-deleted":
		return "Queue deleted. Nodes stop matching it; its live tickets are cancelled."
	}
	return ""
}

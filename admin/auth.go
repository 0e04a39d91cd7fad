package admin

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// The pages of logging in: name and password, then the second factor
// (challenge or first enrolment), and the password confirmation sensitive
// changes ask for.

type loginData struct{ Next string }

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	next := localNext(r.URL.Query().Get("next"))
	if a := web.ActorFrom(r.Context()); a != nil && a.MFAOutstanding() == "" {
		u.seeOther(w, r, orDefault(next, "/admin"))
		return
	}
	u.loginView(w, r, nil, http.StatusOK, next)
}

func (u *ui) loginView(w http.ResponseWriter, r *http.Request, f *Form, status int, next string) {
	u.render(w, r, status, "login", &page{Title: "Log in", Bare: true, Form: f, Data: loginData{Next: next}})
}

func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	next := localNext(r.PostForm.Get("next"))
	res, err := u.svc.Login(r.Context(), service.LoginRequest{
		Name:      r.PostForm.Get("name"),
		Password:  r.PostForm.Get("password"),
		Address:   web.ClientAddress(r),
		UserAgent: r.UserAgent(),
		Device:    u.cookies.Device(r),
		Previous:  u.cookies.Session(r),
	})
	switch code := tandem.ErrorCodeOf(err); code {
	case 0:
	case tandem.EUnauthenticated, tandem.ERateLimited:
		u.loginView(w, r, formFromError("login", r.PostForm, err), code.HTTPStatus(), next)
		return
	default:
		u.fail(w, r, err)
		return
	}
	u.cookies.SetSession(w, res.Token, res.Session.ExpiresAt.Sub(res.Session.CreatedAt))
	u.cookies.SetDevice(w, res.Device)
	switch res.Actor.MFAOutstanding() {
	case service.MFAChallenge:
		to := "/admin/mfa"
		if next != "" {
			to += "?next=" + url.QueryEscape(next)
		}
		u.seeOther(w, r, to)
	case service.MFAEnrol:
		u.seeOther(w, r, "/admin/mfa/enrol")
	default:
		u.seeOther(w, r, orDefault(next, "/admin"))
	}
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	err := u.svc.Logout(r.Context(), web.ActorFrom(r.Context()))
	if err != nil && tandem.ErrorCodeOf(err) != tandem.EUnauthenticated {
		u.fail(w, r, err)
		return
	}
	u.cookies.ClearSession(w)
	u.seeOther(w, r, "/admin/login?done=logged-out")
}

type mfaData struct{ Next string }

func (u *ui) mfaPage(w http.ResponseWriter, r *http.Request) {
	a := web.ActorFrom(r.Context())
	next := localNext(r.URL.Query().Get("next"))
	switch a.MFAOutstanding() {
	case service.MFAEnrol:
		u.seeOther(w, r, "/admin/mfa/enrol")
		return
	case "":
		u.seeOther(w, r, orDefault(next, "/admin"))
		return
	}
	u.mfaView(w, r, nil, http.StatusOK, next)
}

func (u *ui) mfaView(w http.ResponseWriter, r *http.Request, f *Form, status int, next string) {
	u.render(w, r, status, "mfa", &page{Title: "Two-factor code", Form: f, Data: mfaData{Next: next}})
}

func (u *ui) mfa(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	a := web.ActorFrom(r.Context())
	next := localNext(r.PostForm.Get("next"))
	err := u.svc.CompleteMFA(r.Context(), a, strings.TrimSpace(r.PostForm.Get("code")))
	switch tandem.ErrorCodeOf(err) {
	case 0:
		u.seeOther(w, r, orDefault(next, "/admin"))
		return
	case tandem.EConflict:
		// Nothing is asked of this session (any more): carry on.
		u.seeOther(w, r, orDefault(next, "/admin"))
		return
	case tandem.EUnauthenticated:
		// A wrong code, not a lost session: say so next to the field.
		err = tandem.Invalid([]tandem.FieldError{{Field: "code", Message: tandem.ErrorMessageOf(err)}})
	}
	u.formError(w, r, err, "mfa", "/admin/mfa", func(f *Form, status int) { u.mfaView(w, r, f, status, next) })
}

type enrolData struct {
	// Pending is the secret offered and not yet confirmed, or nil.
	Pending  *service.MFAEnrolment
	Enrolled bool
	// Required: the admin's role needs MFA and none is enrolled yet.
	Required bool
}

func (u *ui) enrolPage(w http.ResponseWriter, r *http.Request) {
	if a := web.ActorFrom(r.Context()); a.MFAOutstanding() == service.MFAChallenge {
		u.seeOther(w, r, "/admin/mfa")
		return
	}
	u.enrolView(w, r, nil, http.StatusOK)
}

func (u *ui) enrolView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	d := enrolData{Enrolled: a.Admin.MFAEnabled(), Required: a.MFAOutstanding() == service.MFAEnrol}
	pending, err := u.svc.PendingMFA(a)
	switch tandem.ErrorCodeOf(err) {
	case 0:
		d.Pending = pending
	case tandem.ENotFound:
	default:
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "enrol", &page{Title: "Two-factor authentication", Active: "/admin/account", Form: f, Data: d})
}

func (u *ui) beginEnrol(w http.ResponseWriter, r *http.Request) {
	if _, err := u.svc.BeginMFAEnrolment(r.Context(), web.ActorFrom(r.Context())); err != nil {
		u.formError(w, r, err, "begin", "/admin/mfa/enrol", func(f *Form, status int) { u.enrolView(w, r, f, status) })
		return
	}
	u.seeOther(w, r, "/admin/mfa/enrol?done=enrolment-started")
}

func (u *ui) enrolQR(w http.ResponseWriter, r *http.Request) {
	png, err := u.svc.PendingMFAQRCode(web.ActorFrom(r.Context()))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	// The image is the secret: never keep it.
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
}

type recoveryData struct{ Codes []string }

func (u *ui) confirmEnrol(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	codes, err := u.svc.ConfirmMFAEnrolment(r.Context(), web.ActorFrom(r.Context()), strings.TrimSpace(r.PostForm.Get("code")))
	if err != nil {
		u.formError(w, r, err, "confirm", "/admin/mfa/enrol", func(f *Form, status int) { u.enrolView(w, r, f, status) })
		return
	}
	u.render(w, r, http.StatusOK, "recovery", &page{Title: "Recovery codes", Active: "/admin/account", Data: recoveryData{Codes: codes}})
}

type reauthData struct {
	Next     string
	NeedCode bool
	// Interrupted: a change was refused for want of this confirmation.
	// Resume carries it through the confirmation, so nothing typed is lost.
	Interrupted bool
	Resume      *resumeData
}

// resumeData is a change interrupted by the password confirmation: the
// form's action and what was posted, offered again once confirmed.
type resumeData struct {
	Action string
	Fields []resumeField
}

type resumeField struct{ Name, Value string }

// resumePrefix marks the interrupted form's fields inside the reauth form.
const resumePrefix = "resume:"

// interrupted returns the change r posted, to carry through the
// confirmation (nil if r is no local form post).
func interrupted(r *http.Request) *resumeData {
	action := localNext(r.URL.Path)
	if r.Method != http.MethodPost || action == "" || r.URL.Path == "/admin/reauth" {
		return nil
	}
	d := &resumeData{Action: action}
	for _, name := range slices.Sorted(maps.Keys(r.PostForm)) {
		for _, v := range r.PostForm[name] {
			d.Fields = append(d.Fields, resumeField{name, v})
		}
	}
	return d
}

// resumed reads the interrupted change back out of the reauth form.
func resumed(form url.Values) *resumeData {
	action := localNext(form.Get(resumePrefix + "action"))
	if action == "" {
		return nil
	}
	d := &resumeData{Action: action}
	for _, name := range slices.Sorted(maps.Keys(form)) {
		field, ok := strings.CutPrefix(name, resumePrefix+"field:")
		if !ok {
			continue
		}
		for _, v := range form[name] {
			d.Fields = append(d.Fields, resumeField{field, v})
		}
	}
	return d
}

func (u *ui) reauthPage(w http.ResponseWriter, r *http.Request) {
	u.reauthView(w, r, nil, http.StatusOK, localNext(r.URL.Query().Get("next")))
}

// reauthView shows the password confirmation; it returns to next, or
// offers the interrupted change again.
func (u *ui) reauthView(w http.ResponseWriter, r *http.Request, f *Form, status int, next string) {
	a := web.ActorFrom(r.Context())
	d := reauthData{Next: next, NeedCode: a.Admin != nil && a.Admin.MFAEnabled(), Interrupted: r.URL.Path != "/admin/reauth"}
	if d.Interrupted {
		d.Resume = interrupted(r)
	} else {
		d.Resume = resumed(r.PostForm)
	}
	u.render(w, r, status, "reauth", &page{Title: "Confirm it's you", Form: f, Data: d})
}

func (u *ui) reauth(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	next := localNext(r.PostForm.Get("next"))
	err := u.svc.Reauthenticate(r.Context(), web.ActorFrom(r.Context()), r.PostForm.Get("password"), strings.TrimSpace(r.PostForm.Get("code")))
	if err != nil {
		u.formError(w, r, err, "reauth", next, func(f *Form, status int) { u.reauthView(w, r, f, status, next) })
		return
	}
	if d := resumed(r.PostForm); d != nil {
		u.render(w, r, http.StatusOK, "resume", &page{Title: "Confirmed", Data: reauthData{Next: orDefault(next, "/admin"), Resume: d}})
		return
	}
	u.seeOther(w, r, withDone(orDefault(next, "/admin"), "reauthenticated"))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// withDone adds the notice key of a finished action to a local path.
func withDone(path, done string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "done=" + done
}

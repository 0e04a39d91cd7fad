package admin

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

func templateFuncs(assets *assetSet) template.FuncMap {
	return template.FuncMap{
		"asset":        assets.url,
		"field":        newField,
		"roleSelect":   newRoleSelect,
		"permFieldset": newPermChecks,
		"when":         formatTime,
		"whenExact":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"roomPath":     roomPath,
		"playerPath":   playerPath,
		"isoTime":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"millis":       func(ms float64) string { return strconv.FormatFloat(ms, 'f', 1, 64) + " ms" },
	}
}

// field is one labelled input of the "field" partial.
type field struct {
	ID, Name, Label, Type string
	Value, Error          string
	Autocomplete, Hint    string
	Required              bool
}

// newField describes input name of form f. opts are "required",
// "autocomplete=…", "hint=…", "value=…" (the value when f was not
// submitted) and "secret" (never shown again, as a password: one-time
// codes).
func newField(f *Form, name, label, typ string, opts ...string) field {
	fd := field{ID: f.Key + "-" + name, Name: name, Label: label, Type: typ, Error: f.Err(name)}
	def, secret := "", typ == "password"
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "required":
			fd.Required = true
		case "autocomplete":
			fd.Autocomplete = v
		case "hint":
			fd.Hint = v
		case "value":
			def = v
		case "secret":
			secret = true
		}
	}
	switch {
	case secret:
	case f.Submitted():
		fd.Value = f.Value(name)
	default:
		fd.Value = def
	}
	return fd
}

// selectField is one labelled select of the "select" partial.
type selectField struct {
	ID, Name, Label, Error string
	Options                []option
	// Placeholder is shown, unselectable, when nothing is selected.
	Placeholder string
}

type option struct {
	Value, Label string
	Selected     bool
}

// newRoleSelect describes a role picker of form f with selected chosen
// unless f was submitted with another.
func newRoleSelect(f *Form, name, label string, roles []*tandem.Role, selected int64) selectField {
	cur := strconv.FormatInt(selected, 10)
	if f.Submitted() {
		cur = f.Value(name)
	}
	s := selectField{ID: f.Key + "-" + name, Name: name, Label: label, Error: f.Err(name), Placeholder: "Choose a role"}
	for _, r := range roles {
		id := strconv.FormatInt(r.ID, 10)
		s.Options = append(s.Options, option{Value: id, Label: r.Name, Selected: id == cur})
		if id == cur {
			s.Placeholder = ""
		}
	}
	return s
}

// permCheck is one checkbox of the permissions fieldset.
type permCheck struct {
	Disabled               bool
	ID, Value, Description string
	RequiresMFA, Checked   bool
}

// permFieldset is the "permissions" partial's input.
type permFieldset struct {
	Key, Error string
	Checks     []permCheck
}

// newPermChecks lists every permission for form f, checked as submitted
// or, before that, as role holds them (role may be nil). A permission the
// viewer does not hold is shown but cannot be ticked: nobody grants more
// than they hold (the service refuses it anyway).
func newPermChecks(f *Form, role *tandem.Role, viewer *service.Actor) permFieldset {
	out := permFieldset{Key: f.Key, Error: f.Err("permissions")}
	for _, p := range tandem.Permissions() {
		v := string(p.Permission)
		checked := role.Has(p.Permission)
		if f.Submitted() {
			checked = f.Has("permissions", v)
		}
		out.Checks = append(out.Checks, permCheck{ID: f.Key + "-perm-" + strings.ReplaceAll(v, ":", "-"), Value: v,
			Description: p.Description, RequiresMFA: p.RequiresMFA, Checked: checked, Disabled: !viewer.Can(p.Permission)})
	}
	return out
}

// formatTime shows a time in UTC to the minute, "never" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

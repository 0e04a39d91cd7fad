package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/web"
)

// auditPageSize is how many records one page of the audit log shows.
const auditPageSize = 50

type auditData struct {
	Records []*tandem.AuditRecord
	// Older is the link to the next page back; Newest returns to the
	// first page. Each is "" when there is none.
	Older, Newest string
}

func (u *ui) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter, fields := parseAuditFilter(q)
	var d auditData
	err := tandem.Invalid(fields)
	if err == nil {
		d.Records, err = u.svc.AuditLog(r.Context(), web.ActorFrom(r.Context()), filter)
	}
	f := &Form{Key: "filter", Values: q}
	status := http.StatusOK
	switch tandem.ErrorCodeOf(err) {
	case 0:
	case tandem.EValidation:
		f, status = formFromError("filter", q, err), http.StatusUnprocessableEntity
	default:
		u.fail(w, r, err)
		return
	}
	if n := len(d.Records); n == auditPageSize {
		d.Older = auditURL(q, d.Records[n-1].Seq)
	}
	if filter.BeforeSeq != 0 {
		d.Newest = auditURL(q, 0)
	}
	if isHTMX(r) {
		// htmx would put the empty fields of the filter form in the address.
		w.Header().Set("HX-Push-Url", auditURL(q, filter.BeforeSeq))
	}
	u.render(w, r, status, "audit", &page{Title: "Audit log", Active: "/admin/audit", Form: f, Data: d})
}

// auditURL is the audit page with the same filter, before the cursor
// (0: from the newest record).
func auditURL(q url.Values, before int64) string {
	next := url.Values{}
	for k, v := range q {
		if k != "before" && len(v) > 0 && v[0] != "" {
			next.Set(k, v[0])
		}
	}
	if before > 0 {
		next.Set("before", strconv.FormatInt(before, 10))
	}
	if len(next) == 0 {
		return "/admin/audit"
	}
	return "/admin/audit?" + next.Encode()
}

// parseAuditFilter reads the filter form; the service checks what is left
// (the result's values, since before until).
func parseAuditFilter(q url.Values) (tandem.AuditFilter, []tandem.FieldError) {
	f := tandem.AuditFilter{
		ActorName:  strings.TrimSpace(q.Get("actor")),
		Action:     strings.TrimSpace(q.Get("action")),
		TargetType: strings.TrimSpace(q.Get("target_type")),
		TargetID:   strings.TrimSpace(q.Get("target_id")),
		Result:     tandem.AuditResult(q.Get("result")),
		Limit:      auditPageSize,
	}
	var fields []tandem.FieldError
	var ok bool
	if f.Since, ok = parseFilterTime(q.Get("since")); !ok {
		fields = append(fields, tandem.FieldError{Field: "since", Message: "use a date and time such as 2025-01-31T14:05"})
	}
	if f.Until, ok = parseFilterTime(q.Get("until")); !ok {
		fields = append(fields, tandem.FieldError{Field: "until", Message: "use a date and time such as 2025-01-31T14:05"})
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			fields = append(fields, tandem.FieldError{Field: "before", Message: "must be a positive record number"})
		} else {
			f.BeforeSeq = n
		}
	}
	return f, fields
}

// parseFilterTime reads a time in UTC as a datetime-local input sends it,
// or as RFC 3339; "" is the zero time.
func parseFilterTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

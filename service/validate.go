package service

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tandemhq/tandem"
)

// Password length bounds: long enough to matter, short enough that hashing
// an attacker's megabyte is not a way to burn CPU.
const (
	minPasswordLen = 12
	maxPasswordLen = 128
)

func checkPassword(field, password, name string) []tandem.FieldError {
	n := utf8.RuneCountInString(password)
	switch {
	case n < minPasswordLen:
		return []tandem.FieldError{{Field: field, Message: "use at least 12 characters"}}
	case n > maxPasswordLen:
		return []tandem.FieldError{{Field: field, Message: "use at most 128 characters"}}
	case strings.EqualFold(password, name):
		return []tandem.FieldError{{Field: field, Message: "must not be the name"}}
	}
	return nil
}

// checkName validates a display name: 1 to max printable characters, no
// leading or trailing space. Anything else (HTML, SQL, emoji) is allowed:
// names are only ever text.
func checkName(field, name string, max int) []tandem.FieldError {
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return []tandem.FieldError{{Field: field, Message: "must be valid UTF-8"}}
	case n == 0:
		return []tandem.FieldError{{Field: field, Message: "is required"}}
	case n > max:
		return []tandem.FieldError{{Field: field, Message: "is too long"}}
	case strings.TrimSpace(name) != name:
		return []tandem.FieldError{{Field: field, Message: "must not start or end with a space"}}
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return []tandem.FieldError{{Field: field, Message: "must not contain control characters"}}
	}
	return nil
}

// validText reports whether s can be stored as text in both databases:
// PostgreSQL refuses invalid UTF-8 and NUL characters.
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

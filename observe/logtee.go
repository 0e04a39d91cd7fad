package observe

import (
	"context"
	"log/slog"
)

// LogRecord is a log record passed on by TeeWarnings: its level, message
// and attributes flattened to strings (groups joined with dots).
type LogRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// TeeWarnings returns a handler that writes every record to h and passes
// the records at WARN and above to emit as well (a realtime node publishes
// them as node.log events). emit must not block and must not log through
// the returned handler.
func TeeWarnings(h slog.Handler, emit func(LogRecord)) slog.Handler {
	return &teeHandler{inner: h, emit: emit}
}

type teeHandler struct {
	inner  slog.Handler
	emit   func(LogRecord)
	attrs  []slog.Attr // from WithAttrs, keys already prefixed with their groups
	prefix string      // the open groups, "a.b."
}

func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || t.inner.Enabled(ctx, l)
}

func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.inner.Enabled(ctx, r.Level) {
		err = t.inner.Handle(ctx, r)
	}
	if r.Level >= slog.LevelWarn {
		attrs := make(map[string]string, len(t.attrs)+r.NumAttrs())
		for _, a := range t.attrs {
			flatten(attrs, "", a)
		}
		r.Attrs(func(a slog.Attr) bool {
			flatten(attrs, t.prefix, a)
			return true
		})
		t.emit(LogRecord{Level: r.Level, Message: r.Message, Attrs: attrs})
	}
	return err
}

func (t *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	c.inner = t.inner.WithAttrs(as)
	c.attrs = make([]slog.Attr, len(t.attrs), len(t.attrs)+len(as))
	copy(c.attrs, t.attrs)
	for _, a := range as {
		a.Key = t.prefix + a.Key
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (t *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	c := *t
	c.inner = t.inner.WithGroup(name)
	c.prefix = t.prefix + name + "."
	return &c
}

// flatten writes a (a group's attributes one by one) into m under prefix.
func flatten(m map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(m, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	m[prefix+a.Key] = v.String()
}

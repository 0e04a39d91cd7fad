package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Units of a Measure's Value.
const (
	UnitMicroseconds = "µs"
	UnitPerSecond    = "/s"
	UnitKiB          = "KiB"
	UnitMiB          = "MiB"
	UnitPercentCore  = "% of one core"
	UnitCount        = ""
)

// Measure is one line of a report: a figure, and the target it is held
// against if there is one.
type Measure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Target is the target in words, such as "≤ 8 KiB"; empty for a
	// figure given for information.
	Target string `json:"target,omitempty"`
	// Met says whether Value meets Target (absent without a target).
	Met *bool `json:"met,omitempty"`
}

// Report is the outcome of one scenario.
type Report struct {
	Scenario string `json:"scenario"`
	// Setup describes the run in words (clients, rooms, rates, duration).
	Setup string `json:"setup"`
	Codec string `json:"codec"`
	// Bots is the bot mode of a realtime scenario: raw or sdk.
	Bots     string    `json:"bots,omitempty"`
	Measures []Measure `json:"measures"`
	// Notes are things the reader should know to trust the figures: a
	// saturated client, failed connections, refused frames.
	Notes []string `json:"notes,omitempty"`
	// Errors counts the error frames the bots received, by code name
	// (rate_limited, not_found…), during the whole run.
	Errors map[string]int `json:"errors,omitempty"`
	// Closes counts the connections that ended other than by the run's own
	// normal closure, by close code name; "abnormal" is a connection lost
	// without a close frame (a reset, or a fault the proxy injected).
	Closes map[string]int `json:"closes,omitempty"`
	// Resumes counts resumes by outcome (the reconnect scenario's victims;
	// with SDK bots, every bot's in any scenario):
	// replayed (the missed frames came back), snapshot (a gap: the room's
	// snapshot instead), expired (the session was no longer held).
	Resumes map[string]int `json:"resumes,omitempty"`
}

func (r *Report) info(name string, v float64, unit string) {
	r.Measures = append(r.Measures, Measure{Name: name, Value: v, Unit: unit})
}

func (r *Report) atMost(name string, v float64, unit string, limit float64, target string) {
	met := v <= limit
	r.Measures = append(r.Measures, Measure{Name: name, Value: v, Unit: unit, Target: target, Met: &met})
}

func (r *Report) atLeast(name string, v float64, unit string, limit float64, target string) {
	met := v >= limit
	r.Measures = append(r.Measures, Measure{Name: name, Value: v, Unit: unit, Target: target, Met: &met})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// latency adds p50, p99 and max of h (in µs), holding p50 and p99 to their
// targets when given (0: for information).
func (r *Report) latency(name string, h *Histogram, p50, p99 time.Duration) {
	add := func(label string, d, limit time.Duration) {
		us := float64(d) / float64(time.Microsecond)
		if limit > 0 {
			r.atMost(name+" "+label, us, UnitMicroseconds, float64(limit)/float64(time.Microsecond), "≤ "+formatValue(float64(limit)/float64(time.Microsecond), UnitMicroseconds))
		} else {
			r.info(name+" "+label, us, UnitMicroseconds)
		}
	}
	add("p50", h.Quantile(0.50), p50)
	add("p99", h.Quantile(0.99), p99)
	add("max", h.Max(), 0)
	r.info(name+" samples", float64(h.Count()), UnitCount)
}

// WriteTable writes the report for people: one line per measure with its
// value, target and whether it is met.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s (codec %s): %s\n\n", r.Scenario, r.Codec, r.Setup)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tVALUE\tTARGET\tRESULT")
	for _, m := range r.Measures {
		result := ""
		if m.Met != nil {
			result = "met"
			if !*m.Met {
				result = "NOT MET"
			}
		}
		target := m.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, formatValue(m.Value, m.Unit), target, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range []struct {
		title  string
		counts map[string]int
	}{{"error frames by code", r.Errors}, {"closes by code", r.Closes}, {"resumes by outcome", r.Resumes}} {
		if len(c.counts) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", c.title, formatCounts(c.counts))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// formatCounts writes counts by name as "a 3, b 1", by name.
func formatCounts(counts map[string]int) string {
	names := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + groupThousands(int64(counts[n]))
	}
	return strings.Join(parts, ", ")
}

// formatValue writes a value with its unit the way a person reads it.
func formatValue(v float64, unit string) string {
	switch unit {
	case UnitMicroseconds:
		switch {
		case v >= 1000:
			return strconv.FormatFloat(v/1000, 'f', 2, 64) + " ms"
		case v >= 100:
			return strconv.FormatFloat(v, 'f', 0, 64) + " µs"
		default:
			return strconv.FormatFloat(v, 'f', 1, 64) + " µs"
		}
	case UnitPerSecond:
		return groupThousands(int64(math.Round(v))) + "/s"
	case UnitKiB, UnitMiB:
		return strconv.FormatFloat(v, 'f', 2, 64) + " " + unit
	case UnitPercentCore:
		return strconv.FormatFloat(v, 'f', 1, 64) + unit
	case UnitCount:
		if v == math.Trunc(v) {
			return groupThousands(int64(v))
		}
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 6, 64) + " " + unit
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

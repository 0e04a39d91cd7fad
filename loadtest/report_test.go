package loadtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{12.34, UnitMicroseconds, "12.3 µs"},
		{123.4, UnitMicroseconds, "123 µs"},
		{2500, UnitMicroseconds, "2.50 ms"},
		{1234567.4, UnitPerSecond, "1,234,567/s"},
		{999, UnitPerSecond, "999/s"},
		{3.456, UnitKiB, "3.46 KiB"},
		{45.04, UnitPercentCore, "45.0% of one core"},
		{10000, UnitCount, "10,000"},
		{0, UnitCount, "0"},
	} {
		if got := formatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestReportTableAndJSON(t *testing.T) {
	r := &Report{Scenario: "idle", Setup: "10 connections", Codec: "tandem.v1.proto"}
	r.atMost("server RSS growth per connection", 9.5, UnitKiB, 8, "≤ 8 KiB")
	r.atLeast("connections held", 10, UnitCount, 10, "= 10")
	r.info("load client CPU", 3, UnitPercentCore)
	r.note("a note")

	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	want := map[string]string{
		"server RSS growth per connection": "NOT MET",
		"connections held":                 "met",
	}
	for name, result := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, name) {
				found = true
				if !strings.HasSuffix(strings.TrimSpace(l), result) {
					t.Errorf("line %q does not end with %q", l, result)
				}
			}
		}
		if !found {
			t.Errorf("no line for %q in\n%s", name, table.String())
		}
	}
	if !strings.Contains(table.String(), "note: a note") {
		t.Errorf("the note is missing:\n%s", table.String())
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Measures) != 3 || back.Measures[0].Met == nil || *back.Measures[0].Met || back.Measures[2].Met != nil {
		t.Errorf("JSON round trip: %s", js.String())
	}
}

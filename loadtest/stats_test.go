package loadtest

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.501, 51}, {0.99, 99}, {0.995, 100}, {1, 100}} {
		if got := Percentile(s, tc.q); got != tc.want {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("one sample: p99 = %v, want 7", got)
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("no samples: p50 = %v, want 0", got)
	}
	// p50 of an even count is the lower middle one, not an average.
	if got := Percentile([]time.Duration{4, 1, 3, 2}, 0.5); got != 2 {
		t.Errorf("p50 of 1..4 = %v, want 2", got)
	}
}

func TestHistogramBucketsCoverEveryValueOnce(t *testing.T) {
	check := func(v int64) {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, out of [0, %d)", v, i, histBuckets)
		}
		if up := histUpper(i); up < v {
			t.Fatalf("value %d in bucket %d whose upper bound is %d", v, i, up)
		}
		if i > 0 && histUpper(i-1) >= v {
			t.Fatalf("value %d in bucket %d, but bucket %d reaches %d", v, i, i-1, histUpper(i-1))
		}
	}
	for v := int64(0); v < 10_000; v++ {
		check(v)
	}
	for range 100_000 {
		check(rand.Int64())
	}
	check(1<<63 - 1)
}

func TestHistogramQuantilesAreWithinTheirBucket(t *testing.T) {
	var h Histogram
	var samples []time.Duration
	for range 100_000 {
		d := time.Duration(rand.ExpFloat64() * float64(200*time.Microsecond))
		h.Record(d)
		samples = append(samples, d)
	}
	if h.Count() != 100_000 {
		t.Fatalf("Count = %d", h.Count())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := Percentile(samples, q)
		got := h.Quantile(q)
		// Never below the true quantile, at most one bucket (1/64) above.
		if got < exact || float64(got) > float64(exact)*(1+1.0/64)+1 {
			t.Errorf("q%v: histogram %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != Percentile(samples, 1) {
		t.Errorf("Max = %v, want %v", h.Max(), Percentile(samples, 1))
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 {
		t.Errorf("after Reset: count %d, p50 %v, max %v", h.Count(), h.Quantile(0.5), h.Max())
	}
}

func TestHistogramExactForSmallValues(t *testing.T) {
	var h Histogram
	for v := range 100 {
		h.Record(time.Duration(v + 1))
	}
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("p50 of 1..100 ns = %v, want 50ns", got)
	}
	if got := h.Quantile(0.99); got != 99 {
		t.Errorf("p99 of 1..100 ns = %v, want 99ns", got)
	}
	h.Record(-5) // a clock step backwards counts as 0
	if got := h.Quantile(0); got != 0 {
		t.Errorf("p0 after a negative value = %v, want 0", got)
	}
}

package loadtest

import (
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"
)

// Percentile returns the q-quantile (0 ≤ q ≤ 1) of samples by the
// nearest-rank method: the smallest sample such that at least q of all
// samples are less than or equal to it. samples is sorted in place. It
// returns 0 for no samples.
func Percentile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	slices.Sort(samples)
	return samples[rankIndex(len(samples), q)]
}

// rankIndex is the index of the nearest-rank q-quantile among n sorted
// values.
func rankIndex(n int, q float64) int {
	rank := int(math.Ceil(q * float64(n)))
	return min(max(rank, 1), n) - 1
}

// Histogram counts durations in log-linear buckets: exact below 128 ns,
// then 64 buckets per power of two, so a quantile it reports is at most
// 1/64 (1.6 %) above the true one and never below it. It is safe for
// concurrent use (one atomic add per value), which lets thousands of reader
// goroutines share one without a lock.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

const (
	histSubBits = 6                                  // 64 sub-buckets per power of two
	histSub     = 1 << histSubBits                   // 64
	histLinear  = 2 * histSub                        // values below this have their own bucket
	histBuckets = (64-histSubBits)*histSub + histSub // up to 2^63 ns
)

func histIndex(v int64) int {
	if v < histLinear {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	return shift*histSub + int(uint64(v)>>shift)
}

// histUpper returns the largest value of bucket i.
func histUpper(i int) int64 {
	if i < histLinear {
		return int64(i)
	}
	shift := i/histSub - 1
	m := int64(i%histSub + histSub)
	return (m+1)<<shift - 1
}

// Record counts one duration (negative ones count as 0).
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the nearest-rank q-quantile, rounded up to its bucket's
// upper bound (and never above the maximum). It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(rankIndex(int(min(n, math.MaxInt)), q)) + 1
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum >= rank {
			return time.Duration(min(histUpper(i), h.max.Load()))
		}
	}
	return h.Max()
}

// Reset forgets every value. It is not atomic with respect to concurrent
// Records: a value recorded during Reset may survive it.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.total.Store(0)
	h.max.Store(0)
}

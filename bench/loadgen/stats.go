package main

// Outcome recording and the JSON report. Knows nothing about how calls are scheduled.

import (
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// recorder collects the outcome of every measured call; safe for concurrent use.
type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration // successful calls only
	errors    map[string]int  // by gRPC status code name
	sent      int
	// responseLen is the length of the last successful response, a cheap check that the target
	// answered with a real inference result rather than an empty message.
	responseLen int
	// okInWindow counts successful responses that arrived inside the window, whenever they were
	// sent: the target's throughput, which a backlog at the window's end cannot inflate.
	okInWindow int
}

func newRecorder(expected int) *recorder {
	return &recorder{latencies: make([]time.Duration, 0, expected), errors: map[string]int{}}
}

func (r *recorder) add(latency time.Duration, code codes.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	if code == codes.OK {
		r.latencies = append(r.latencies, latency)
	} else {
		r.errors[code.String()]++
	}
}

// report is the one JSON object the generator prints on stdout.
type report struct {
	Mode        string         `json:"mode"`   // "open" or "saturate"
	Target      string         `json:"target"` // host:port
	Connections int            `json:"connections"`
	Rate        float64        `json:"rate"`    // requested calls per second (open loop); 0 when saturating
	Workers     int            `json:"workers"` // closed-loop workers (saturate); 0 in open loop
	WarmupS     float64        `json:"warmup_s"`
	DurationS   float64        `json:"duration_s"`
	Scheduled   int            `json:"scheduled"` // measured calls due: sent + skipped
	Sent        int            `json:"sent"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"`  // by gRPC status code, e.g. {"Unavailable": 3}
	Skipped     int            `json:"skipped"` // due while max-outstanding calls were in flight
	P50Ms       float64        `json:"p50_ms"`
	P90Ms       float64        `json:"p90_ms"`
	P99Ms       float64        `json:"p99_ms"`
	P999Ms      float64        `json:"p999_ms"`
	MaxMs       float64        `json:"max_ms"`
	MeanMs      float64        `json:"mean_ms"`
	OKInWindow  int            `json:"ok_in_window"` // successful responses received in the window
	AchievedRPS float64        `json:"achieved_rps"` // ok_in_window / duration_s
	// How late the generator itself sent a call after its scheduled time: if this grows, the
	// generator (not the target) is falling behind, and latencies include that lag.
	MaxSendLagMs float64 `json:"max_send_lag_ms"`
	P99SendLagMs float64 `json:"p99_send_lag_ms"`
	ResponseLen  int     `json:"response_bytes"` // length of the last successful response
}

func (r *recorder) setResponseLen(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responseLen = n
}

func (r *recorder) answeredInWindow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.okInWindow++
}

func (r *recorder) fill(rep *report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Sent = r.sent
	rep.Errors = r.errors
	rep.OK = len(r.latencies)
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	rep.P50Ms = ms(quantile(lat, 0.50))
	rep.P90Ms = ms(quantile(lat, 0.90))
	rep.P99Ms = ms(quantile(lat, 0.99))
	rep.P999Ms = ms(quantile(lat, 0.999))
	if len(lat) > 0 {
		rep.MaxMs = ms(lat[len(lat)-1])
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		rep.MeanMs = ms(sum / time.Duration(len(lat)))
	}
	rep.OKInWindow = r.okInWindow
	rep.ResponseLen = r.responseLen
	if rep.DurationS > 0 {
		rep.AchievedRPS = round3(float64(r.okInWindow) / rep.DurationS)
	}
}

// quantile is the nearest-rank q-quantile of sorted values; 0 when there are none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

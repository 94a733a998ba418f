package main

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
)

func TestQuantileIsNearestRank(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 1000; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{
		0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond,
		0.999: 999 * time.Millisecond, 1: 1000 * time.Millisecond,
	} {
		if got := quantile(sorted, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v, want 0", got)
	}
}

func TestRecorderCountsErrorsByCodeAndLatenciesOfSuccessesOnly(t *testing.T) {
	r := newRecorder(4)
	r.add(time.Millisecond, codes.OK)
	r.add(3*time.Millisecond, codes.OK)
	r.add(time.Second, codes.Unavailable)
	r.add(time.Second, codes.Unavailable)
	r.answeredInWindow()
	r.answeredInWindow()
	r.answeredInWindow() // one sent during the warm-up, answered in the window
	rep := report{DurationS: 2}
	r.fill(&rep)
	if rep.Sent != 4 || rep.OK != 2 || rep.Errors["Unavailable"] != 2 {
		t.Fatalf("sent %d ok %d errors %v", rep.Sent, rep.OK, rep.Errors)
	}
	if rep.MaxMs != 3 || rep.P50Ms != 1 || rep.OKInWindow != 3 || rep.AchievedRPS != 1.5 {
		t.Fatalf("max %v p50 %v achieved %v", rep.MaxMs, rep.P50Ms, rep.AchievedRPS)
	}
}

func TestRawCodecSendsBytesAsIsAndCountsTheReply(t *testing.T) {
	payload := []byte("serialised request")
	out, err := rawCodec{}.Marshal(&payload)
	if err != nil || string(out.Materialize()) != string(payload) {
		t.Fatalf("Marshal = %q, %v", out.Materialize(), err)
	}
	var n int
	if err := (rawCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer("12345")}, &n); err != nil || n != 5 {
		t.Fatalf("Unmarshal: n = %d, %v", n, err)
	}
	if _, err := (rawCodec{}).Marshal("not bytes"); err == nil {
		t.Fatal("Marshal of a string did not fail")
	}
}

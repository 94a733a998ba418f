// Command loadgen drives one unary gRPC method with a pre-serialised request and prints one JSON
// report: open loop at a Poisson rate (latency from each call's scheduled send time, so a target
// that stalls is charged for the calls it delayed), or closed loop with -saturate.
//
// It knows nothing about the inference contract beyond the method name; the request bytes come
// from -payload. On stderr it writes "EVENT window-start <unix-ns>" and "EVENT window-end
// <unix-ns>" as the measured window opens and closes, so a driver can sample the target's CPU
// over exactly that window.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type config struct {
	addr           string
	method         string
	payload        []byte
	rate           float64
	arrivals       string
	warmup         time.Duration
	duration       time.Duration
	conns          int
	maxOutstanding int
	timeout        time.Duration
	saturate       bool
	workers        int
	seed           uint64
	// Metadata sent with every call (-header key=value, repeatable): a bearer token, a client id.
	headers metadata.MD
	// The channel's :authority (-authority): a service name, for the sidecar's egress.
	authority string
}

// headerFlags collects repeated -header key=value flags.
type headerFlags struct{ md metadata.MD }

func (h *headerFlags) String() string { return fmt.Sprint(h.md) }

func (h *headerFlags) Set(v string) error {
	key, value, ok := strings.Cut(v, "=")
	if !ok || key == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	h.md.Append(strings.ToLower(key), value)
	return nil
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	rep, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags() (config, error) {
	var c config
	var payloadPath string
	flag.StringVar(&c.addr, "addr", "", "target host:port (required)")
	flag.StringVar(&c.method, "method", "/inference.GRPCInferenceService/ModelInfer",
		"full gRPC method name")
	flag.StringVar(&payloadPath, "payload", "", "file holding the serialised request (required)")
	flag.Float64Var(&c.rate, "rate", 500, "open loop: mean calls per second")
	flag.StringVar(&c.arrivals, "arrivals", "poisson",
		"open loop: poisson (random gaps, as independent callers send) or uniform (one every 1/rate)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "load before the measured window")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of the measured window")
	flag.IntVar(&c.conns, "conns", 1, "HTTP/2 connections, used round-robin")
	flag.IntVar(&c.maxOutstanding, "max-outstanding", 1000,
		"open loop: calls in flight at most; a call due beyond that is skipped and counted")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Second, "deadline of each call")
	flag.BoolVar(&c.saturate, "saturate", false, "closed loop: -workers calls back to back")
	flag.IntVar(&c.workers, "workers", 32, "saturate: concurrent closed-loop workers")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the arrival process")
	headers := headerFlags{md: metadata.MD{}}
	flag.Var(&headers, "header", "metadata key=value sent with every call; repeatable")
	flag.StringVar(&c.authority, "authority", "", "the channel's :authority (default: -addr)")
	flag.Parse()
	c.headers = headers.md
	switch {
	case c.addr == "":
		return c, fmt.Errorf("-addr is required")
	case payloadPath == "":
		return c, fmt.Errorf("-payload is required")
	case !c.saturate && c.rate <= 0:
		return c, fmt.Errorf("-rate must be > 0, got %v", c.rate)
	case c.arrivals != "poisson" && c.arrivals != "uniform":
		return c, fmt.Errorf("-arrivals must be poisson or uniform, got %q", c.arrivals)
	case c.duration <= 0 || c.warmup < 0:
		return c, fmt.Errorf("-duration must be > 0 and -warmup >= 0")
	case c.conns < 1 || c.maxOutstanding < 1 || c.workers < 1:
		return c, fmt.Errorf("-conns, -max-outstanding and -workers must be >= 1")
	}
	b, err := os.ReadFile(payloadPath)
	if err != nil {
		return c, fmt.Errorf("-payload: %w", err)
	}
	c.payload = b
	return c, nil
}

func run(cfg config) (*report, error) {
	conns, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()
	rep := &report{
		Target: cfg.addr, Connections: cfg.conns,
		WarmupS: cfg.warmup.Seconds(), DurationS: cfg.duration.Seconds(),
	}
	// Bounds the whole run, whatever the target does.
	limit := cfg.warmup + cfg.duration + cfg.timeout + 10*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, cfg.headers)
	if cfg.saturate {
		rep.Mode, rep.Workers = "saturate", cfg.workers
		runSaturate(ctx, cfg, conns, rep)
	} else {
		rep.Mode, rep.Rate = "open", cfg.rate
		runOpen(ctx, cfg, conns, rep)
	}
	return rep, nil
}

// dial opens every connection and checks each with one call, so a broken target fails fast
// with its own error instead of as a report full of errors.
func dial(cfg config) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, cfg.conns)
	closeAll := func() {
		for _, cc := range conns {
			cc.Close()
		}
	}
	for range cfg.conns {
		opts := []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})),
		}
		if cfg.authority != "" {
			opts = append(opts, grpc.WithAuthority(cfg.authority))
		}
		cc, err := grpc.NewClient(cfg.addr, opts...)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dial %s: %w", cfg.addr, err)
		}
		conns = append(conns, cc)
		ctx, cancel := context.WithTimeout(
			metadata.NewOutgoingContext(context.Background(), cfg.headers), 10*time.Second)
		var n int
		err = cc.Invoke(ctx, cfg.method, &cfg.payload, &n, grpc.WaitForReady(true))
		state := cc.GetState()
		cancel()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("first call to %s (connection %s): %w", cfg.addr, state, err)
		}
		if state != connectivity.Ready {
			closeAll()
			return nil, fmt.Errorf("connection to %s is %s after a successful call", cfg.addr, state)
		}
	}
	return conns, nil
}

// announce writes the window events on stderr at warmEnd and end.
func announce(warmEnd, end time.Time) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Until(warmEnd))
		fmt.Fprintf(os.Stderr, "EVENT window-start %d\n", time.Now().UnixNano())
		time.Sleep(time.Until(end))
		fmt.Fprintf(os.Stderr, "EVENT window-end %d\n", time.Now().UnixNano())
	}()
	return &wg
}

// runOpen sends calls at Poisson (or, with -arrivals=uniform, evenly spaced) arrival times
// regardless of how earlier calls fare. Each call's latency runs from its scheduled time, so time
// spent queued behind a slow target (or a late generator) counts, which is what a caller with its
// own arrival process would see.
func runOpen(ctx context.Context, cfg config, conns []*grpc.ClientConn, rep *report) {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	start := time.Now().Add(20 * time.Millisecond)
	warmEnd := start.Add(cfg.warmup)
	end := warmEnd.Add(cfg.duration)
	rec := newRecorder(int(cfg.rate*cfg.duration.Seconds()) + 1024)
	events := announce(warmEnd, end)

	inflight := make(chan struct{}, cfg.maxOutstanding)
	var calls sync.WaitGroup
	var lags []time.Duration
	next := start
	for i := 0; ; i++ {
		gap := 1 / cfg.rate
		if cfg.arrivals == "poisson" {
			gap = rng.ExpFloat64() / cfg.rate
		}
		next = next.Add(time.Duration(gap * float64(time.Second)))
		if !next.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		measured := !next.Before(warmEnd)
		if measured {
			rep.Scheduled++
			lags = append(lags, time.Since(next))
		}
		select {
		case inflight <- struct{}{}:
		default:
			if measured {
				rep.Skipped++
			}
			continue
		}
		calls.Add(1)
		go func(cc *grpc.ClientConn, scheduled time.Time, measured bool) {
			defer calls.Done()
			defer func() { <-inflight }()
			callCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
			defer cancel()
			var n int
			err := cc.Invoke(callCtx, cfg.method, &cfg.payload, &n)
			done := time.Now()
			if err == nil && inWindow(done, warmEnd, end) {
				rec.answeredInWindow()
			}
			if measured {
				rec.add(done.Sub(scheduled), status.Code(err))
				if err == nil {
					rec.setResponseLen(n)
				}
			}
		}(conns[i%len(conns)], next, measured)
	}
	calls.Wait()
	events.Wait()
	rec.fill(rep)
	slices.Sort(lags)
	rep.P99SendLagMs = ms(quantile(lags, 0.99))
	if len(lags) > 0 {
		rep.MaxSendLagMs = ms(lags[len(lags)-1])
	}
}

// runSaturate runs -workers closed loops, each sending its next call as soon as the last one
// answers; the achieved rate is the target's throughput at that concurrency.
func runSaturate(ctx context.Context, cfg config, conns []*grpc.ClientConn, rep *report) {
	start := time.Now()
	warmEnd := start.Add(cfg.warmup)
	end := warmEnd.Add(cfg.duration)
	rec := newRecorder(1 << 16)
	events := announce(warmEnd, end)
	var workers sync.WaitGroup
	for w := range cfg.workers {
		workers.Add(1)
		go func(cc *grpc.ClientConn) {
			defer workers.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				callCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
				var n int
				err := cc.Invoke(callCtx, cfg.method, &cfg.payload, &n)
				cancel()
				done := time.Now()
				if err == nil && inWindow(done, warmEnd, end) {
					rec.answeredInWindow()
				}
				if !t0.Before(warmEnd) {
					rec.add(done.Sub(t0), status.Code(err))
					if err == nil {
						rec.setResponseLen(n)
					}
				}
			}
		}(conns[w%len(conns)])
	}
	workers.Wait()
	events.Wait()
	rec.fill(rep)
	rep.Scheduled = rep.Sent
}

func inWindow(t, start, end time.Time) bool { return !t.Before(start) && t.Before(end) }

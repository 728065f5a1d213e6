package bench

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// load is one shape of load: Burst requests at once; else Rate per second
// for Duration (open model: each request starts on schedule, more workers
// are started whenever all are busy); else, with Concurrency, as fast as
// Concurrency requests in flight allow, for Duration (closed model: the
// ceiling).
type load struct {
	Rate        int
	Duration    time.Duration
	Burst       int
	Concurrency int
	Timeout     time.Duration
	// Connections bounds the connections to the server; a request that
	// finds them all busy waits for one, and the wait counts in its
	// latency (it still started on schedule).
	Connections int
}

// sample is what the bench keeps of one request.
type sample struct {
	start   time.Time
	latency time.Duration
	// code is "" for a 202 with a test id, else the error class: the JSON
	// code of the answer, or the transport failure.
	code   string
	testID string
	// answered: the server sent a status (false for a transport failure).
	answered bool
}

// counters are read by the progress line while the load runs.
type counters struct {
	sent, accepted, failed atomic.Int64
}

// loadResult is the outcome of one load, before percentiles.
type loadResult struct {
	requests   int
	accepted   int
	firstStart time.Time
	lastStart  time.Time
	lastEnd    time.Time // of an accepted request
	latencies  []time.Duration
	// refusals are the latencies of the other answers (an HTTP status
	// other than 202: a refusal such as 503 overloaded); a transport
	// failure is no answer and has none.
	refusals []time.Duration
	errors   map[string]int
}

// stats turns the result into its report form.
func (r loadResult) stats() LoadStats {
	s := LoadStats{
		Requests:   r.requests,
		Accepted:   r.accepted,
		Acceptance: Summarize(r.latencies),
		Refusal:    Summarize(r.refusals),
		Errors:     r.errors,
	}
	if r.accepted > 0 {
		span := r.lastEnd.Sub(r.firstStart)
		s.AcceptSpanMS = ms(span)
		if span > 0 {
			s.AchievedRate = round1(float64(r.accepted) / span.Seconds())
		}
	}
	if d := r.lastStart.Sub(r.firstStart); r.requests > 1 && d > 0 {
		s.SendRate = round1(float64(r.requests-1) / d.Seconds())
	}
	return s
}

// runLoad sends target with the shape l and calls onSample (on one
// goroutine) for every answer as it comes. It returns when every request
// has answered or failed, or soon after ctx ends.
func runLoad(ctx context.Context, targets []vegeta.Target, l load, c *counters, onSample func(sample)) loadResult {
	// The transport is complete before any connection exists: changing
	// MaxConnsPerHost once connections are open corrupts its count.
	client := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		MaxConnsPerHost:     l.Connections,
	}}
	defer client.CloseIdleConnections()
	opts := []func(*vegeta.Attacker){
		vegeta.Client(client), // first: the options below adjust it
		vegeta.Timeout(l.Timeout),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.MaxBody(64 << 10),
		vegeta.KeepAlive(true),
	}
	var (
		pacer    vegeta.Pacer
		duration time.Duration
		warm     int // connections to open before a burst
	)
	switch {
	case l.Burst > 0:
		// Every request has its worker waiting: they all start at once.
		n := uint64(l.Burst)
		opts = append(opts, vegeta.Workers(n), vegeta.MaxWorkers(n))
		warm = l.Burst
		if l.Connections > 0 {
			warm = min(warm, l.Connections) // more would wait for a connection forever
		}
		pacer = burstPacer(n)
	case l.Concurrency > 0:
		n := uint64(l.Concurrency)
		opts = append(opts, vegeta.Workers(n), vegeta.MaxWorkers(n))
		pacer, duration = vegeta.Rate{Freq: 0}, l.Duration // no pacing: as fast as the workers go
	default:
		pacer, duration = vegeta.Rate{Freq: l.Rate, Per: time.Second}, l.Duration
	}
	atk := vegeta.NewAttacker(opts...)
	// Only now: NewAttacker's options change the client's transport, which
	// the dials of the warm-up read (a data race, and a wrong setting, if
	// they ran first).
	if warm > 0 {
		warmUp(ctx, client, targets[0].URL, warm)
	}
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	r := loadResult{errors: map[string]int{}}
	for res := range atk.Attack(vegeta.NewStaticTargeter(targets...), pacer, duration, "sensorhub-bench") {
		s := classify(res)
		c.sent.Add(1)
		r.requests++
		if r.firstStart.IsZero() || s.start.Before(r.firstStart) {
			r.firstStart = s.start
		}
		if s.start.After(r.lastStart) {
			r.lastStart = s.start
		}
		if s.code == "" {
			c.accepted.Add(1)
			r.accepted++
			r.latencies = append(r.latencies, s.latency)
			if end := s.start.Add(s.latency); end.After(r.lastEnd) {
				r.lastEnd = end
			}
		} else {
			c.failed.Add(1)
			r.errors[s.code]++
			if s.answered {
				r.refusals = append(r.refusals, s.latency)
			}
		}
		if onSample != nil {
			onSample(s)
		}
	}
	return r
}

// classify keeps what the report needs of one vegeta result.
func classify(res *vegeta.Result) sample {
	s := sample{start: res.Timestamp, latency: res.Latency, answered: res.Code != 0}
	switch {
	case res.Code == 0:
		s.code = transportClass(res.Error)
	case res.Code != http.StatusAccepted:
		var env struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(res.Body, &env) == nil && env.Code != "" {
			s.code = env.Code
		} else {
			s.code = "http_" + strconv.Itoa(int(res.Code))
		}
	default:
		var acc struct {
			TestID string `json:"test_id"`
		}
		if json.Unmarshal(res.Body, &acc) != nil || acc.TestID == "" {
			s.code = "accepted_without_test_id"
		} else {
			s.testID = acc.TestID
		}
	}
	return s
}

// transportClass names a failure to get any answer, by the kind of error
// (the text is all vegeta keeps of it).
func transportClass(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case m == "":
		return "no_answer"
	case strings.Contains(m, "timeout"), strings.Contains(m, "deadline exceeded"):
		return "timeout"
	case strings.Contains(m, "connection refused"):
		return "connection_refused"
	case strings.Contains(m, "connection reset"), strings.Contains(m, "broken pipe"):
		return "connection_reset"
	case strings.Contains(m, "too many open files"):
		return "too_many_open_files"
	case strings.Contains(m, "cannot assign requested address"):
		return "out_of_ports"
	case strings.Contains(m, "eof"):
		return "eof"
	case strings.Contains(m, "context canceled"):
		return "cancelled"
	case strings.Contains(m, "connection broken"), strings.Contains(m, "server closed idle connection"):
		return "connection_broken"
	}
	return "transport_error"
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// burstPacer releases its hits all at once, then stops.
type burstPacer uint64

// Pace implements vegeta.Pacer.
func (b burstPacer) Pace(_ time.Duration, hits uint64) (time.Duration, bool) {
	return 0, hits >= uint64(b)
}

// Rate implements vegeta.Pacer: all at once.
func (b burstPacer) Rate(time.Duration) float64 { return math.Inf(1) }

// warmUp opens n keep-alive connections to the host of target (n
// simultaneous GET /healthz, each held until all have answered), so that a
// burst measures the server answering n requests at once rather than the
// client's n TCP handshakes. Failures are ignored: the burst then opens
// what is missing.
func warmUp(ctx context.Context, c *http.Client, target string, n int) {
	u, err := url.Parse(target)
	if err != nil {
		return
	}
	health := u.Scheme + "://" + u.Host + "/healthz"
	var answered sync.WaitGroup
	all := make(chan struct{})
	var done sync.WaitGroup
	answered.Add(n)
	for range n {
		done.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
			var resp *http.Response
			if err == nil {
				resp, err = c.Do(req)
			}
			answered.Done()
			<-all // hold the connection until every one is open
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
	answered.Wait()
	close(all)
	done.Wait()
}

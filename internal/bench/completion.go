package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// finish is when and how a test ended.
type finish struct {
	at     time.Time
	status string // completed or failed
}

// tracker matches accepted tests with their ends. An end may be seen before
// the acceptance (the event can beat the 202 to the bench), so both sides
// are kept until they meet. It is safe for concurrent use.
type tracker struct {
	mu       sync.Mutex
	starts   map[string]time.Time // accepted tests: when they were submitted
	ends     map[string]finish    // ended tests (ours or not)
	done     int                  // accepted and ended
	changed  chan struct{}        // a wake-up for wait, never blocks a sender
	finished atomic.Int64         // done, for the progress line
}

func newTracker() *tracker {
	return &tracker{starts: map[string]time.Time{}, ends: map[string]finish{}, changed: make(chan struct{}, 1)}
}

// accepted records a test the edge accepted, submitted at start.
func (t *tracker) accepted(id string, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.starts[id]; dup {
		return
	}
	t.starts[id] = start
	if _, ok := t.ends[id]; ok {
		t.countDone()
	}
}

// ended records the end of a test; only the first end counts (an event
// may be delivered again).
func (t *tracker) ended(id string, f finish) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.ends[id]; dup {
		return
	}
	t.ends[id] = f
	if _, ok := t.starts[id]; ok {
		t.countDone()
	}
}

func (t *tracker) countDone() {
	t.done++
	t.finished.Store(int64(t.done))
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// wait blocks until every accepted test has ended, or ctx ends.
func (t *tracker) wait(ctx context.Context) bool {
	for {
		t.mu.Lock()
		all := t.done == len(t.starts)
		t.mu.Unlock()
		if all {
			return true
		}
		select {
		case <-t.changed:
		case <-ctx.Done():
			return false
		}
	}
}

// stats summarises the completions of the accepted tests. firstStart is
// the start of the load, for the span.
func (t *tracker) stats(source string, firstStart time.Time) CompletionStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := CompletionStats{Source: source}
	lat := make([]time.Duration, 0, len(t.starts))
	var last time.Time
	for id, start := range t.starts {
		f, ok := t.ends[id]
		if !ok || f.status != messages.StatusCompleted {
			if ok {
				c.Failed++
			}
			c.NotCompleted++
			continue
		}
		c.Completed++
		lat = append(lat, max(f.at.Sub(start), 0))
		if f.at.After(last) {
			last = f.at
		}
	}
	c.Latency = Summarize(lat)
	if !last.IsZero() && !firstStart.IsZero() {
		c.SpanMS = ms(last.Sub(firstStart))
	}
	return c
}

// followEvents subscribes (core NATS, no JetStream consumer) to every event
// subject and feeds the ends to t. The end of a test is when its event
// reaches the bench: after the commit and the outbox relay, the moment any
// subscriber could know. The returned func unsubscribes and closes.
//
// It connects as the bench's user (through the auth callout, with that
// user's inbox): reading every event takes an admin.
func followEvents(natsURL string, files natsx.TLSFiles, user, password string, subj messages.Subjects, t *tracker) (func(), error) {
	tlsOpt, err := files.Option()
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", natsURL, err)
	}
	nc, err := nats.Connect(natsURL, nats.Name("sensorhub-bench"), nats.Timeout(5*time.Second), tlsOpt,
		nats.UserInfo(user, password), nats.CustomInboxPrefix(messages.InboxPrefix(user)))
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", natsURL, err)
	}
	sub, err := nc.Subscribe(subj.Events(), func(m *nats.Msg) {
		at := time.Now()
		if id, status := eventFields(m.Data); id != "" {
			t.ended(id, finish{at: at, status: status})
		}
	})
	if err == nil {
		// A slow bench must not drop events: nothing would tell it.
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush() // the subscription is in place before the first submission
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", subj.Events(), err)
	}
	return func() { _ = sub.Unsubscribe(); nc.Close() }, nil
}

// poller follows accepted tests with GET /test/{id}, PollWorkers at a time.
// A test is first read PollInterval after its submission, then every
// PollInterval until it ends; its end is the record's completed_at (the
// server's clock: the same as the bench's on one machine), so a poller that
// lags behind under load does not inflate the completion latency.
type poller struct {
	client   *http.Client
	base     string
	token    string
	interval time.Duration
	t        *tracker
	errors   atomic.Int64

	mu     sync.Mutex
	queue  []pollItem
	notify chan struct{}
}

type pollItem struct {
	id        string
	start     time.Time
	notBefore time.Time
}

func newPoller(client *http.Client, base, token string, interval time.Duration, t *tracker) *poller {
	return &poller{client: client, base: base, token: token, interval: interval, t: t, notify: make(chan struct{}, 1)}
}

// add queues an accepted test.
func (p *poller) add(id string, start time.Time) {
	p.push(pollItem{id: id, start: start, notBefore: start.Add(p.interval)})
}

func (p *poller) push(it pollItem) {
	p.mu.Lock()
	p.queue = append(p.queue, it)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *poller) pop() (pollItem, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return pollItem{}, false
	}
	it := p.queue[0]
	p.queue[0] = pollItem{}
	p.queue = p.queue[1:]
	if len(p.queue) > 0 {
		// Wake another worker: there is more to do.
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}
	return it, true
}

// run polls with n workers until ctx ends.
func (p *poller) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { p.work(ctx) })
	}
	wg.Wait()
}

func (p *poller) work(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		it, ok := p.pop()
		if !ok {
			select {
			case <-p.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		if d := time.Until(it.notBefore); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		f, ended, err := p.read(ctx, it.id)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.errors.Add(1)
		case ended:
			if f.at.Before(it.start) {
				f.at = it.start
			}
			p.t.ended(it.id, f)
			continue
		}
		it.notBefore = time.Now().Add(p.interval)
		p.push(it)
	}
}

// read asks for one test; ended is false while it is processing.
func (p *poller) read(ctx context.Context, id string) (finish, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/test/"+id, nil)
	if err != nil {
		return finish{}, false, err
	}
	req.Header.Set(messages.HeaderAuthorization, "Bearer "+p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return finish{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return finish{}, false, fmt.Errorf("GET /test/%s: status %d", id, resp.StatusCode)
	}
	var rec struct {
		Status      string     `json:"status"`
		CompletedAt *time.Time `json:"completed_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		return finish{}, false, fmt.Errorf("decode test %s: %w", id, err)
	}
	if rec.Status == messages.StatusProcessing {
		return finish{}, false, nil
	}
	at := time.Now()
	if rec.CompletedAt != nil {
		at = *rec.CompletedAt
	}
	return finish{at: at, status: rec.Status}, true, nil
}

// eventFields reads test_id and status from an event payload. Thousands
// arrive each second on the bench's own CPU, so the two members are looked
// up directly (the producer writes them unescaped, as encoding/json does);
// anything else goes through encoding/json.
func eventFields(data []byte) (testID, status string) {
	testID, ok1 := stringMember(data, `"test_id":"`)
	status, ok2 := stringMember(data, `"status":"`)
	if ok1 && ok2 {
		return testID, status
	}
	var e struct {
		TestID string `json:"test_id"`
		Status string `json:"status"`
	}
	if json.Unmarshal(data, &e) != nil {
		return "", ""
	}
	return e.TestID, e.Status
}

// stringMember returns the value of the first `"name":"value"` in data when
// it holds no escape.
func stringMember(data []byte, key string) (string, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false
	}
	return string(rest[:j]), true
}

package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/acceptance"
	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

func TestSubmitAndResult(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.Name, func(t *testing.T) {
			h := newHarness(t)
			st := kind.Open(t)
			h.start(st, nil)
			spec := acceptance.Catalogue()[0]

			// Submitted readings, token in the header.
			ref := spec.Nominal
			a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: spec.Type, SensorID: "bench-1",
				Readings: readingsFor(spec, 20), IntervalMS: 500, Reference: &ref})
			if a.AuthMode != messages.AuthModeOnline || a.Duplicate {
				t.Fatalf("accepted %+v, want auth_mode online and no duplicate", a)
			}
			rec := h.waitDone(tokAlice, a.TestID)
			if rec.Status != messages.StatusCompleted || rec.Verdict != messages.VerdictPass {
				t.Fatalf("record %+v, want completed with verdict pass", rec)
			}
			if rec.Stats == nil || rec.Stats.Count != 20 || rec.Stats.Mean != spec.Nominal {
				t.Fatalf("stats %+v, want 20 readings with mean %v", rec.Stats, spec.Nominal)
			}
			if rec.Source != messages.SourceSubmitted || rec.Unit != spec.Unit || rec.Owner != "alice" ||
				rec.SensorID != "bench-1" || rec.SensorType != spec.Type || rec.AuthMode != messages.AuthModeOnline ||
				len(rec.Checks) == 0 || rec.CompletedAt == nil {
				t.Fatalf("record %+v is missing fields", rec)
			}

			// No readings: a simulated acquisition; token in the body.
			var sim messages.TestAccepted
			ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
			defer cancel()
			if _, err := natsx.Request(ctx, h.nc, h.subj.SensorSubmit(),
				messages.SubmitTest{SensorType: spec.Type, Token: tokAlice}, nil, &sim); err != nil {
				t.Fatalf("submit with body token: %v", err)
			}
			rec = h.waitDone(tokAlice, sim.TestID)
			if rec.Status != messages.StatusCompleted || rec.Source != messages.SourceSimulated ||
				rec.Stats == nil || rec.Stats.Count != spec.SimReadings || rec.SensorID != messages.DefaultSensorID {
				t.Fatalf("simulated record %+v, want completed, simulated, %d readings", rec, spec.SimReadings)
			}

			// The stored request never holds the token.
			stored, err := st.GetTest(ctx, sim.TestID)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(stored.Request), tokAlice) {
				t.Fatalf("stored request %s holds the token", stored.Request)
			}
			if c := counts(t, st); c[messages.StatusCompleted] != 2 || total(c) != 2 {
				t.Fatalf("counts %v, want 2 completed", c)
			}
		})
	}
}

func TestSubmitRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	h.start(st, nil)
	spec := acceptance.Catalogue()[0]
	tooMany := fmt.Sprintf(`{"sensor_type":%q,"readings":[%s0]}`, spec.Type, strings.Repeat("0,", messages.MaxReadings))
	huge := `{"sensor_type":"` + spec.Type + `","sensor_id":"` + strings.Repeat("x", messages.MaxBodyBytes) + `"}`
	cases := []struct {
		name string
		body string
		hdr  nats.Header
		want messages.Code
	}{
		{"malformed JSON", `{"sensor_type":`, nil, messages.CodeInvalidJSON},
		{"not an object", `[1,2,3]`, nil, messages.CodeInvalidJSON},
		{"wrong type of readings", `{"sensor_type":"temperature","readings":"many"}`, nil, messages.CodeInvalidJSON},
		{"wrong type of interval", `{"sensor_type":"temperature","interval_ms":"fast"}`, nil, messages.CodeInvalidJSON},
		{"unknown field", `{"sensor_type":"temperature","owner":"root"}`, nil, messages.CodeInvalidJSON},
		{"trailing data", `{"sensor_type":"temperature"} {}`, nil, messages.CodeInvalidJSON},
		{"interval too small", `{"sensor_type":"temperature","readings":[1,2],"interval_ms":-5}`, nil, messages.CodeInvalidReadings},
		{"interval too large", `{"sensor_type":"temperature","readings":[1,2],"interval_ms":3600001}`, nil, messages.CodeInvalidReadings},
		{"10,001 readings", tooMany, nil, messages.CodeInvalidReadings},
		{"reading out of float range", `{"sensor_type":"temperature","readings":[1e400]}`, nil, messages.CodeInvalidJSON},
		{"bad sensor id", `{"sensor_type":"temperature","sensor_id":"a b"}`, nil, messages.CodeInvalidSensorID},
		{"sensor id injection", `{"sensor_type":"temperature","sensor_id":"x'; DROP TABLE tests;--"}`, nil, messages.CodeInvalidSensorID},
		{"sensor id markup", `{"sensor_type":"temperature","sensor_id":"<script>alert(1)</script>"}`, nil, messages.CodeInvalidSensorID},
		{"unknown type", `{"sensor_type":"plutonium"}`, nil, messages.CodeUnknownSensorType},
		{"missing type", `{}`, nil, messages.CodeUnknownSensorType},
		{"empty body", ``, nil, messages.CodeUnknownSensorType},
		{"type with subject wildcard", `{"sensor_type":"temp.>"}`, nil, messages.CodeUnknownSensorType},
		{"type with control chars", `{"sensor_type":"temp\u0000\n"}`, nil, messages.CodeUnknownSensorType},
		{"type path traversal", `{"sensor_type":"../../etc/passwd"}`, nil, messages.CodeUnknownSensorType},
		{"hostile idempotency header", `{"sensor_type":"temperature"}`, nats.Header{"Idempotency-Key": {"a b\u00e9"}}, messages.CodeBadRequest},
		{"idempotency key too long", `{"sensor_type":"temperature","idempotency_key":"` + strings.Repeat("k", 129) + `"}`, nil, messages.CodeBadRequest},
		{"body too large", huge, nil, messages.CodeBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.submit(tokAlice, []byte(tc.body), tc.hdr)
			wantCode(t, err, tc.want)
		})
	}
	if n := total(counts(t, st)); n != 0 {
		t.Fatalf("%d tests stored after bad input, want none", n)
	}
}

func TestSubmitNeedsToken(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	h.start(st, nil)
	body := []byte(`{"sensor_type":"temperature"}`)
	cases := []struct {
		name string
		hdr  nats.Header
		body []byte
	}{
		{"no token", nil, body},
		{"unknown token", nats.Header{"Authorization": {"Bearer nope"}}, body},
		{"not a bearer header", nats.Header{"Authorization": {"Basic YWxpY2U6eA=="}}, body},
		{"header wins over body token", nats.Header{"Authorization": {"Bearer nope"}}, []byte(`{"sensor_type":"temperature","token":"` + tokAlice + `"}`)},
		{"token too long", nil, []byte(`{"sensor_type":"temperature","token":"` + strings.Repeat("t", messages.MaxTokenLen+1) + `"}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.submit("", tc.body, tc.hdr)
			wantCode(t, err, messages.CodeUnauthorized)
		})
	}
	if n := total(counts(t, st)); n != 0 {
		t.Fatalf("%d tests stored without a valid token, want none", n)
	}
	// A lower-case header name works too.
	if _, err := h.submit("", body, nats.Header{"authorization": {"bearer " + tokAlice}}); err != nil {
		t.Fatalf("submit with a lower-case authorization header: %v", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	h.start(st, nil)
	body := messages.SubmitTest{SensorType: "humidity"}

	first, err := h.submit(tokAlice, body, nats.Header{"Idempotency-Key": {"retry-1"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.submit(tokAlice, body, nats.Header{"Idempotency-Key": {"retry-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.TestID != first.TestID || !again.Duplicate || first.Duplicate {
		t.Fatalf("first %+v, again %+v: want the same id, the second a duplicate", first, again)
	}
	// The key in the body works the same way.
	inBody := body
	inBody.IdempotencyKey = "retry-1"
	// (It may have finished by now: a duplicate answers the test's status.)
	viaBody, err := h.submit(tokAlice, inBody, nil)
	if err != nil || viaBody.TestID != first.TestID || !viaBody.Duplicate {
		t.Fatalf("body key gave %+v (%v), want a duplicate of %s", viaBody, err, first.TestID)
	}
	// Another user's identical key is another test.
	bobs, err := h.submit(tokBob, body, nats.Header{"Idempotency-Key": {"retry-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if bobs.TestID == first.TestID || bobs.Duplicate {
		t.Fatalf("bob's submission %+v shares alice's test", bobs)
	}
	h.waitDone(tokAlice, first.TestID)
	h.waitDone(tokBob, bobs.TestID)
	if c := counts(t, st); total(c) != 2 || c[messages.StatusCompleted] != 2 {
		t.Fatalf("counts %v, want exactly 2 completed tests", c)
	}
}

func TestResultAccess(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	h.start(st, nil)
	a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "pressure"})
	h.waitDone(tokAlice, a.TestID)

	_, err := h.result(tokBob, a.TestID)
	wantCode(t, err, messages.CodeForbidden)
	rec, err := h.result(tokAdmin, a.TestID)
	if err != nil || rec.TestID != a.TestID || rec.Owner != "alice" {
		t.Fatalf("admin read: %+v, %v", rec, err)
	}
	_, err = h.result(tokAlice, "01920f4e-7c2a-7d31-9e5b-000000000000")
	wantCode(t, err, messages.CodeNotFound)
	_, err = h.result(tokAlice, "not-a-uuid")
	wantCode(t, err, messages.CodeInvalidTestID)
	_, err = h.result("", a.TestID)
	wantCode(t, err, messages.CodeUnauthorized)
	_, err = h.result("forged", a.TestID)
	wantCode(t, err, messages.CodeUnauthorized)

	// The token may travel in the body.
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	var viaBody messages.TestRecord
	if _, err := natsx.Request(ctx, h.nc, h.subj.SensorResult(),
		messages.GetResult{TestID: a.TestID, Token: tokAlice}, nil, &viaBody); err != nil || viaBody.TestID != a.TestID {
		t.Fatalf("read with body token: %+v, %v", viaBody, err)
	}
}

func TestOverloadRefusesAndAcceptedComplete(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	const limit, extra = 4, 12
	h.start(st, func(c *Config) { c.MaxInFlight = limit })
	release := h.auth.block()
	defer release()

	type outcome struct {
		accepted messages.TestAccepted
		err      error
	}
	results := make(chan outcome, limit+extra)
	var wg sync.WaitGroup
	submit := func() {
		defer wg.Done()
		a, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "co2"}, nil)
		results <- outcome{a, err}
	}
	// Fill the in-flight slots: their token checks hang.
	for i := 0; i < limit; i++ {
		wg.Add(1)
		go submit()
	}
	testenv.Eventually(t, "the admitted submissions to reach the authenticator", func() bool {
		return h.auth.calls.Load() == limit
	})
	for i := 0; i < extra; i++ {
		wg.Add(1)
		go submit()
	}
	for i := 0; i < extra; i++ {
		o := <-results
		e := wantCode(t, o.err, messages.CodeOverloaded)
		if e.RetryAfter != 1 {
			t.Fatalf("overloaded without retry_after: %+v", e)
		}
	}
	release()
	wg.Wait()
	close(results)
	var ids []string
	for o := range results {
		if o.err != nil {
			t.Fatalf("admitted submission failed: %v", o.err)
		}
		ids = append(ids, o.accepted.TestID)
	}
	if len(ids) != limit {
		t.Fatalf("%d accepted, want %d", len(ids), limit)
	}
	for _, id := range ids {
		if rec := h.waitDone(tokAlice, id); rec.Status != messages.StatusCompleted {
			t.Fatalf("accepted test %s ended %s", id, rec.Status)
		}
	}
	if c := counts(t, st); total(c) != limit {
		t.Fatalf("counts %v, want %d tests", c, limit)
	}
}

// TestByteBoundRefusesAndDrains: past MaxInFlightBytes a submission is
// refused with 503 overloaded (nothing stored), although the count bound
// has room; once the queued tests are processed, the bytes drain and
// submissions are admitted again.
func TestByteBoundRefusesAndDrains(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	spec := acceptance.Catalogue()[0]
	payload, err := json.Marshal(messages.SubmitTest{SensorType: spec.Type, Readings: readingsFor(spec, 1000)})
	if err != nil {
		t.Fatal(err)
	}
	// Room for three queued tests of 1,000 readings, and for the
	// reservation of the third while the first two wait: not for a fourth.
	perTest := (&work{readings: make([]float64, 1000)}).bytes()
	limit := 3*perTest + submissionReserve(len(payload)) - 1
	gate := make(chan struct{})
	var gateOnce sync.Once
	svc := h.start(st, func(c *Config) {
		c.MaxInFlight = 100
		c.MaxInFlightBytes = limit
		c.hooks = &testHooks{beforeProcess: func(store.Test) { <-gate }}
	})
	t.Cleanup(func() { gateOnce.Do(func() { close(gate) }) })

	submit := func() (messages.TestAccepted, error) { return h.submit(tokAlice, payload, nil) }
	var ids []string
	for i := range 3 {
		a, err := submit()
		if err != nil {
			t.Fatalf("submission %d within the byte bound: %v", i, err)
		}
		ids = append(ids, a.TestID)
	}
	if c := svc.pipe.counts(); c.bytes != 3*perTest || c.queued != 3 {
		t.Fatalf("pipeline %+v, want 3 queued tests holding %d bytes", c, 3*perTest)
	}
	for range 3 {
		_, err := submit()
		if e := wantCode(t, err, messages.CodeOverloaded); e.RetryAfter != 1 {
			t.Fatalf("overloaded without retry_after: %+v", e)
		}
	}
	if c := counts(t, st); total(c) != 3 {
		t.Fatalf("counts %v after the refusals, want the 3 admitted tests only", c)
	}

	gateOnce.Do(func() { close(gate) })
	for _, id := range ids {
		if rec := h.waitDone(tokAlice, id); rec.Status != messages.StatusCompleted {
			t.Fatalf("test %s ended %s", id, rec.Status)
		}
	}
	testenv.Eventually(t, "the bytes to drain", func() bool { return svc.pipe.counts().bytes == 0 })
	a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: spec.Type, Readings: readingsFor(spec, 1000)})
	if rec := h.waitDone(tokAlice, a.TestID); rec.Status != messages.StatusCompleted {
		t.Fatalf("test %s after the drain ended %s", a.TestID, rec.Status)
	}
}

func TestDatabaseOutage(t *testing.T) {
	h := newHarness(t)
	st := &flakyStore{Store: openSQLite(t)}
	hold := make(chan struct{})
	var holding sync.Once
	held := make(chan struct{})
	svc := h.start(st, func(c *Config) {
		c.hooks = &testHooks{beforeProcess: func(tt store.Test) {
			if strings.HasPrefix(tt.SensorID, "held") {
				holding.Do(func() { close(held) })
				<-hold
			}
		}}
	})

	// A test accepted before the outage, whose completion runs into it.
	before := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "light", SensorID: "held-1"})
	<-held
	st.down.Store(true)
	close(hold)

	// Submissions get 503 Database unavailable, within the request deadline.
	for i := 0; i < 3; i++ {
		_, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "light"}, nil)
		e := wantCode(t, err, messages.CodeDatabaseUnavailable)
		if e.Message != messages.MsgDatabaseUnavailable {
			t.Fatalf("message %q, want %q", e.Message, messages.MsgDatabaseUnavailable)
		}
	}
	_, err := h.result(tokAlice, before.TestID)
	wantCode(t, err, messages.CodeDatabaseUnavailable)
	testenv.Eventually(t, "the health report to show the database down", func() bool {
		hr := svc.Health(context.Background())
		return hr.Status == messages.HealthDegraded && hr.Dependencies["database"].Status == messages.HealthDown
	})

	// The database comes back: no restart needed.
	st.down.Store(false)
	var after messages.TestAccepted
	testenv.Eventually(t, "a submission to succeed again", func() bool {
		a, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "light"}, nil)
		after = a
		return err == nil
	})
	for _, id := range []string{before.TestID, after.TestID} {
		if rec := h.waitDone(tokAlice, id); rec.Status != messages.StatusCompleted {
			t.Fatalf("test %s ended %s", id, rec.Status)
		}
	}
	if c := counts(t, st); total(c) != 2 {
		t.Fatalf("counts %v, want 2 tests (nothing stored during the outage)", c)
	}
	hr := svc.Health(context.Background())
	if hr.Dependencies["database"].Status != messages.HealthUp {
		t.Fatalf("health %+v, want the database up", hr)
	}
}

func TestProcessorPanicIsRetried(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	var mu sync.Mutex
	panicked := map[string]bool{}
	svc := h.start(st, func(c *Config) {
		c.hooks = &testHooks{panicOn: func(tt store.Test) bool {
			mu.Lock()
			defer mu.Unlock()
			if tt.SensorID != "flaky" || panicked[tt.ID] {
				return false
			}
			panicked[tt.ID] = true
			return true
		}}
	})
	a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "vibration", SensorID: "flaky"})
	rec := h.waitDone(tokAlice, a.TestID)
	if rec.Status != messages.StatusCompleted {
		t.Fatalf("record %+v, want completed on the retry", rec)
	}
	if lines := h.logs.lines("actor supervision", "processors/processor-", "directive=restart"); len(lines) == 0 {
		t.Fatalf("no supervision line for the processor restart in:\n%s", h.logs.String())
	}
	if svc.Role().Restarts(actorProcessors) != 0 {
		t.Fatalf("the pool itself restarted")
	}
}

func TestPoisonTestFailsAfterMaxAttempts(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	var mu sync.Mutex
	panics := 0
	h.start(st, func(c *Config) {
		c.MaxAttempts = 3
		c.hooks = &testHooks{panicOn: func(tt store.Test) bool {
			if tt.SensorID != "poison" {
				return false
			}
			mu.Lock()
			panics++
			mu.Unlock()
			return true
		}}
	})
	poison := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "temperature", SensorID: "poison"})
	var healthy []string
	for i := 0; i < 10; i++ {
		healthy = append(healthy, h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "temperature", SensorID: fmt.Sprint("ok-", i)}).TestID)
	}
	rec := h.waitDone(tokAlice, poison.TestID)
	if rec.Status != messages.StatusFailed || !strings.Contains(rec.Reason, "processor panics on test") ||
		!strings.Contains(rec.Reason, "3 times") {
		t.Fatalf("poison record %+v, want failed with the panic text after 3 attempts", rec)
	}
	mu.Lock()
	if panics != 3 {
		t.Errorf("processor panicked %d times on the poison test, want 3", panics)
	}
	mu.Unlock()
	for _, id := range healthy {
		if r := h.waitDone(tokAlice, id); r.Status != messages.StatusCompleted {
			t.Fatalf("healthy test %s ended %s", id, r.Status)
		}
	}
	// The failed test has its event too.
	testenv.Eventually(t, "the failed event in the stream", func() bool {
		for _, e := range readStreamIfAny(t, h) {
			if e.event.TestID == poison.TestID {
				return e.event.Type == messages.EventTypeFailed && e.event.Reason == rec.Reason
			}
		}
		return false
	})
}

func readStreamIfAny(t *testing.T, h *harness) []streamEvent {
	if streamCount(t, h.events) == 0 {
		return nil
	}
	return readStream(t, h.events)
}

func TestGroupCommit(t *testing.T) {
	h := newHarness(t)
	rec := &batchRecorder{Store: openSQLite(t), gate: make(chan struct{}), entered: make(chan struct{})}
	const batch, queued = 10, 45
	svc := h.start(rec, func(c *Config) {
		c.InsertBatch = batch
		c.DatabaseBreaker = breaker.Config{CallTimeout: 10 * time.Second}
	})
	errs := make(chan error, queued+1)
	ids := make(chan string, queued+1)
	var wg sync.WaitGroup
	submit := func() {
		defer wg.Done()
		a, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "humidity"}, nil)
		errs <- err
		ids <- a.TestID
	}
	wg.Add(1)
	go submit()
	<-rec.entered // the first batch (of one) holds the transaction
	for i := 0; i < queued; i++ {
		wg.Add(1)
		go submit()
	}
	testenv.Eventually(t, "the submissions to queue behind the running transaction", func() bool {
		return svc.pipe.counts().waitingInserts == queued
	})
	close(rec.gate)
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
	}
	want := []int{1, 10, 10, 10, 10, 5}
	if got := rec.sizes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("insert batches %v, want %v", got, want)
	}
	for id := range ids {
		h.waitDone(tokAlice, id)
	}
}

func TestEndpointsTypesOutboxHealth(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	authBreaker := breaker.New("sensor.auth", breaker.Config{}, nil, h.log)
	h.auth = &fakeAuth{}
	svc := h.start(st, func(c *Config) { c.Auth = authWithBreaker{fakeAuth: h.auth, b: authBreaker} })
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()

	var types messages.SensorTypesReply
	if _, err := natsx.Request(ctx, h.nc, h.subj.SensorTypes(), nil, nil, &types); err != nil {
		t.Fatal(err)
	}
	if len(types.Types) != len(acceptance.Catalogue()) || types.Types[0].Type != acceptance.Catalogue()[0].Type {
		t.Fatalf("types %+v, want the catalogue", types)
	}

	a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "temperature"})
	h.waitDone(tokAlice, a.TestID)
	bridgeConn := h.ns.Conn(t, messages.RoleBridge) // the outbox backlog is the bridge's question
	testenv.Eventually(t, "the outbox to drain", func() bool {
		var stats messages.OutboxStats
		_, err := natsx.Request(ctx, bridgeConn, h.subj.SensorOutbox(), nil, nil, &stats)
		return err == nil && stats.Backlog == 0 && streamCount(t, h.events) == 1
	})

	var hr messages.HealthReply
	testenv.Eventually(t, "a healthy report", func() bool {
		_, err := natsx.Request(ctx, h.nc, h.subj.Health(messages.RoleSensor), nil, nil, &hr)
		return err == nil && hr.Status == messages.HealthOK
	})
	for _, dep := range []string{"database", "nats", "jetstream"} {
		if hr.Dependencies[dep].Status != messages.HealthUp {
			t.Fatalf("health %+v: %s not up", hr, dep)
		}
	}
	for _, b := range []string{"sensor.database", "sensor.jetstream", "sensor.auth"} {
		if hr.CircuitBreakers[b].State != messages.BreakerClosed {
			t.Fatalf("health %+v: breaker %s missing or not closed", hr, b)
		}
	}
	if hr.Role != messages.RoleSensor || hr.Instance == "" {
		t.Fatalf("health %+v: role or instance missing", hr)
	}
	if svc.Role() == nil || len(svc.Role().Names()) != 5 {
		t.Fatalf("role children %v, want 5", svc.Role().Names())
	}
}

func TestStopIsIdempotentAndRefusesAfterwards(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	svc := h.start(st, nil)
	a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "temperature"})
	if err := svc.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := svc.Stop(time.Second); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	// Stop let the accepted test finish.
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	got, err := st.GetTest(ctx, a.TestID)
	if err != nil || got.Status != messages.StatusCompleted {
		t.Fatalf("after stop: %+v, %v; want completed", got.Status, err)
	}
	_, err = h.submit(tokAlice, messages.SubmitTest{SensorType: "temperature"}, nil)
	if !errors.Is(err, natsx.ErrNoResponders) {
		t.Fatalf("submit after stop: %v, want no responders", err)
	}
}

package sensor

import (
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/testenv"
	"sensorhub/internal/tracing/tracingtest"
	"sensorhub/messages"
)

// traceparentOf is a valid traceparent of trace n (as the edge sends).
func traceparentOf(n int) (traceID, traceparent string) {
	traceID = fmt.Sprintf("%032x", 0xabc000+n)
	return traceID, "00-" + traceID + "-00f067aa0ba902b7-01"
}

// A traced submission continues the caller's trace through every hop of
// the role: its intake, its share of the insert group commit, its
// evaluation, its share of the completion commit and the publish of its
// event, whose NATS headers name the publish span. Submissions that share
// a group commit keep their own traces; both dialects.
func TestTracedSubmissionSpansEveryHop(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.Name, func(t *testing.T) {
			h := newHarness(t)
			rec := tracingtest.New(t)
			h.start(kind.Open(t), func(c *Config) { c.Tracer = rec.Tracer })

			const n = 4 // at once, so that some share a batch
			ids := make([]string, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, tp := traceparentOf(i)
					a, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "temperature"}, nats.Header{messages.HeaderTraceparent: {tp}})
					if err != nil {
						errs <- err
						return
					}
					ids[i] = a.TestID
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("submit: %v", err)
			}
			var events []streamEvent
			testenv.Eventually(t, "every event in the stream", func() bool {
				events = readStream(t, h.events)
				return len(events) == n
			})
			byTest := map[string]streamEvent{}
			for _, ev := range events {
				byTest[ev.event.TestID] = ev
			}
			subject := h.subj.SensorSubmit()
			for i, id := range ids {
				traceID, _ := traceparentOf(i)
				ev, ok := byTest[id]
				if !ok {
					t.Fatalf("no event of test %s", id)
				}
				sent := tracingtest.TraceOf(t, ev.header.Get(messages.HeaderTraceparent))
				if sent.TraceID().String() != traceID {
					t.Fatalf("test %d: event names trace %s, want its submission's %s", i, sent.TraceID(), traceID)
				}
				var spans map[string]sdktrace.ReadOnlySpan
				testenv.EventuallyState(t, "every span of trace "+traceID, func() (bool, string) {
					spans = map[string]sdktrace.ReadOnlySpan{}
					for _, s := range rec.Ended() {
						if s.SpanContext().TraceID().String() == traceID {
							spans[s.Name()] = s
						}
					}
					return len(spans) == 5, fmt.Sprint(len(spans), " spans")
				})
				intake := spans["process "+subject]
				insert := spans["insert tests"]
				eval := spans["evaluate test"]
				complete := spans["complete tests"]
				publish := spans["publish "+ev.subject]
				for name, s := range map[string]sdktrace.ReadOnlySpan{"intake": intake, "insert": insert, "evaluate": eval, "complete": complete, "publish": publish} {
					if s == nil {
						t.Fatalf("test %d: no %s span among %v", i, name, spans)
					}
				}
				parentOf := func(child, parent sdktrace.ReadOnlySpan) {
					t.Helper()
					if child.Parent().SpanID() != parent.SpanContext().SpanID() {
						t.Fatalf("test %d: %q has parent %v, want %q (%v)", i, child.Name(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
					}
				}
				if intake.SpanKind() != trace.SpanKindServer || intake.Parent().SpanID().String() != "00f067aa0ba902b7" {
					t.Fatalf("intake span: kind %v, parent %v", intake.SpanKind(), intake.Parent())
				}
				parentOf(insert, intake)
				parentOf(eval, intake)
				parentOf(complete, eval)
				parentOf(publish, complete)
				if publish.SpanKind() != trace.SpanKindProducer || sent.SpanID() != publish.SpanContext().SpanID() {
					t.Fatalf("publish span: kind %v, id %v; the event names %v", publish.SpanKind(), publish.SpanContext().SpanID(), sent.SpanID())
				}
				if m := tracingtest.HasAttrs(intake, map[string]string{"messaging.system": "nats", "messaging.destination.name": subject,
					"messaging.operation.type": "process", "sensorhub.test_id": id}); m != "" {
					t.Fatalf("intake span lacks %s", m)
				}
				if m := tracingtest.HasAttrs(publish, map[string]string{"messaging.system": "nats", "messaging.destination.name": ev.subject,
					"messaging.operation.type": "send", "messaging.message.id": ev.msgID}); m != "" {
					t.Fatalf("publish span lacks %s", m)
				}
				for _, s := range []sdktrace.ReadOnlySpan{insert, complete} {
					if tracingtest.Attr(s, "db.operation.batch.size") == "" {
						t.Fatalf("%s span has no batch size", s.Name())
					}
				}
			}
		})
	}
}

// With tracing off the role reads no traceparent and writes none: the
// event carries no traceparent header even when the submission had one.
func TestTracingOffPublishesNoTraceparent(t *testing.T) {
	h := newHarness(t)
	h.start(openSQLite(t), nil)
	_, tp := traceparentOf(1)
	a, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "co2"}, nats.Header{messages.HeaderTraceparent: {tp}})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	var events []streamEvent
	testenv.Eventually(t, "the event in the stream", func() bool {
		events = readStream(t, h.events)
		return len(events) == 1
	})
	if events[0].event.TestID != a.TestID {
		t.Fatalf("event of %s, want %s", events[0].event.TestID, a.TestID)
	}
	if v, ok := events[0].header[messages.HeaderTraceparent]; ok {
		t.Fatalf("event carries traceparent %q with tracing off", v)
	}
}

package bridge_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/internal/tracing/tracingtest"
	"sensorhub/messages"
)

// tracedEventMsgs are evs as a tracing sensor role publishes them: every
// other one with a traceparent of its own trace (the others untraced, as
// an event written before tracing was on). It returns the traceparent per
// event id.
func tracedEventMsgs(t *testing.T, e *env, evs []messages.TestCompleted) ([]*nats.Msg, map[string]string) {
	t.Helper()
	parents := map[string]string{}
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		data, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		h := eventHeaders(ev)
		if i%2 == 0 {
			h.Traceparent = fmt.Sprintf("00-%032x-%016x-01", 0xfeed00+i, 0xbeef00+i)
			parents[ev.EventID] = h.Traceparent
		}
		msgs[i] = natsx.EventMsg(e.subj.Event(ev.SensorType, ev.Kind()), h, data)
	}
	return msgs, parents
}

// While the bridge traces, each traced event's Kafka write is a producer
// span of its own under the event's publish span, and the record's
// traceparent names that span; records of one batch keep their own
// traces. An untraced event gets no span and no traceparent.
func TestTracedRecordsContinueTheirEventsTrace(t *testing.T) {
	e := newEnv(t)
	rec := tracingtest.New(t)
	cfg := e.config()
	cfg.Tracer = rec.Tracer
	evs := events(10, 3)
	msgs, parents := tracedEventMsgs(t, e, evs)
	for _, m := range msgs {
		e.publishRaw(t, m)
	}
	e.waitPublished(t)
	e.start(t, cfg) // after the publish: the events go out in one batch

	recs, got := kafkaEvents(t, e, len(evs))
	spans := map[string]sdktrace.ReadOnlySpan{} // by event id
	testenv.EventuallyState(t, "a span per traced event", func() (bool, string) {
		for _, s := range rec.Named("send " + messages.DefaultKafkaTopic) {
			spans[tracingtest.Attr(s, "messaging.message.id")] = s
		}
		return len(spans) == len(parents), fmt.Sprint(len(spans), " spans")
	})
	for i, r := range recs {
		id := got[i].EventID
		parent, traced := parents[id]
		tp := testenv.KafkaHeader(r, messages.KafkaHeaderTraceparent)
		if !traced {
			if tp != "" {
				t.Fatalf("untraced event %s: record carries traceparent %q", id, tp)
			}
			continue
		}
		want := tracingtest.TraceOf(t, parent)
		sent := tracingtest.TraceOf(t, tp)
		span := spans[id]
		if span == nil {
			t.Fatalf("event %s: no span", id)
		}
		if sent.TraceID() != want.TraceID() || span.SpanContext().TraceID() != want.TraceID() {
			t.Fatalf("event %s: record names trace %v, span %v; want the event's %v", id, sent.TraceID(), span.SpanContext().TraceID(), want.TraceID())
		}
		if span.Parent().SpanID() != want.SpanID() || sent.SpanID() != span.SpanContext().SpanID() {
			t.Fatalf("event %s: span parent %v (want %v), record names span %v (want %v)",
				id, span.Parent().SpanID(), want.SpanID(), sent.SpanID(), span.SpanContext().SpanID())
		}
		if span.SpanKind() != trace.SpanKindProducer {
			t.Fatalf("event %s: span kind %v, want producer", id, span.SpanKind())
		}
		if m := tracingtest.HasAttrs(span, map[string]string{"messaging.system": "kafka", "messaging.destination.name": messages.DefaultKafkaTopic,
			"messaging.operation.type": "send", "messaging.kafka.message.key": got[i].SensorID}); m != "" {
			t.Fatalf("event %s: span lacks %s", id, m)
		}
	}
}

// With tracing off the bridge writes no traceparent, even for events that
// carry one.
func TestTracingOffWritesNoTraceparent(t *testing.T) {
	e := newEnv(t)
	evs := events(4, 2)
	msgs, _ := tracedEventMsgs(t, e, evs)
	for _, m := range msgs {
		e.publishRaw(t, m)
	}
	e.waitPublished(t)
	e.start(t, e.config())
	recs, _ := kafkaEvents(t, e, len(evs))
	for i, r := range recs {
		for _, h := range r.Headers {
			if h.Key == messages.KafkaHeaderTraceparent {
				t.Fatalf("record %d carries traceparent %q with tracing off", i, h.Value)
			}
		}
	}
}

package edge

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/tracing/tracingtest"
	"sensorhub/messages"
)

const (
	inboundTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	inboundSpanID  = "00f067aa0ba902b7"
	inboundParent  = "00-" + inboundTraceID + "-" + inboundSpanID + "-01"
)

// With tracing off the edge adds no traceparent anywhere: not on its
// answer, not on the NATS request, even when the client sent one.
func TestTracingOffInjectsNothing(t *testing.T) {
	e := newEnv(t, testConfig())
	st := e.stub(messages.RoleSensor, "submit", replyJSON(messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing}))
	for _, hdr := range [][]string{
		{"Authorization", bearerHdr},
		{"Authorization", bearerHdr, "traceparent", inboundParent},
	} {
		rec := e.do(http.MethodPost, "/test/sensor/temperature", "", hdr...)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
		}
		if got := rec.Header().Values(messages.HeaderTraceparent); len(got) != 0 {
			t.Fatalf("answer's traceparent = %q, want none with tracing off", got)
		}
		_, nh := st.last()
		for k := range nh {
			if k == messages.HeaderTraceparent || http.CanonicalHeaderKey(k) == "Traceparent" {
				t.Fatalf("NATS request carries %s with tracing off: %v", k, nh)
			}
		}
	}
}

// With tracing on, a submission is a server span named after its route
// that continues the client's traceparent, and the NATS request is a
// messaging client span under it, named in the request's headers; the
// answer names the server span.
func TestTracingContinuesTheClientsTrace(t *testing.T) {
	rec := tracingtest.New(t)
	cfg := testConfig()
	cfg.Tracer = rec.Tracer
	e := newEnv(t, cfg)
	st := e.stub(messages.RoleSensor, "submit", replyJSON(messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing}))

	r := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr, "Traceparent", inboundParent)
	if r.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", r.Code, r.Body)
	}
	answer := tracingtest.TraceOf(t, r.Header().Get(messages.HeaderTraceparent))
	if answer.TraceID().String() != inboundTraceID {
		t.Fatalf("answer's trace %s, want the client's %s", answer.TraceID(), inboundTraceID)
	}
	servers := rec.Named("POST /test/sensor/{sensor_type}")
	if len(servers) != 1 {
		t.Fatalf("server spans: %d of %d spans", len(servers), len(rec.Ended()))
	}
	srv := servers[0]
	if srv.SpanKind() != trace.SpanKindServer || srv.Parent().SpanID().String() != inboundSpanID ||
		srv.SpanContext().SpanID() != answer.SpanID() {
		t.Fatalf("server span: kind %v, parent %v, id %v; want server, parent %s, the answer's %v",
			srv.SpanKind(), srv.Parent().SpanID(), srv.SpanContext().SpanID(), inboundSpanID, answer.SpanID())
	}
	if m := tracingtest.HasAttrs(srv, map[string]string{"http.request.method": "POST", "http.route": "/test/sensor/{sensor_type}",
		"http.response.status_code": "202"}); m != "" {
		t.Fatalf("server span lacks %s", m)
	}
	subject := e.subj.SensorSubmit()
	clients := rec.Named("request " + subject)
	if len(clients) != 1 {
		t.Fatalf("client spans: %d", len(clients))
	}
	cl := clients[0]
	if cl.SpanKind() != trace.SpanKindClient || cl.Parent().SpanID() != srv.SpanContext().SpanID() {
		t.Fatalf("client span: kind %v, parent %v; want client under %v", cl.SpanKind(), cl.Parent().SpanID(), srv.SpanContext().SpanID())
	}
	if m := tracingtest.HasAttrs(cl, map[string]string{"messaging.system": "nats", "messaging.destination.name": subject,
		"messaging.operation.type": "send", "messaging.operation.name": "request"}); m != "" {
		t.Fatalf("client span lacks %s", m)
	}
	_, nh := st.last()
	sent := tracingtest.TraceOf(t, nh.Get(messages.HeaderTraceparent))
	if sent.TraceID().String() != inboundTraceID || sent.SpanID() != cl.SpanContext().SpanID() {
		t.Fatalf("NATS traceparent names %v/%v, want the client span %v/%v", sent.TraceID(), sent.SpanID(), inboundTraceID, cl.SpanContext().SpanID())
	}
}

// A malformed inbound traceparent never breaks the request: it is
// ignored and the request starts a trace of its own.
func TestMalformedTraceparentStartsANewTrace(t *testing.T) {
	rec := tracingtest.New(t)
	cfg := testConfig()
	cfg.Tracer = rec.Tracer
	e := newEnv(t, cfg)
	e.stub(messages.RoleSensor, "submit", replyJSON(messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing}))
	for _, bad := range []string{
		"not-a-traceparent",
		"00-" + inboundTraceID + "-" + inboundSpanID, // no flags
		"00-00000000000000000000000000000000-" + inboundSpanID + "-01",
		"zz-" + inboundTraceID + "-" + inboundSpanID + "-01",
	} {
		r := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr, "traceparent", bad)
		if r.Code != http.StatusAccepted {
			t.Fatalf("traceparent %q: status = %d, body %s", bad, r.Code, r.Body)
		}
		answer := tracingtest.TraceOf(t, r.Header().Get(messages.HeaderTraceparent))
		if answer.TraceID().String() == inboundTraceID {
			t.Fatalf("traceparent %q: the answer continues it", bad)
		}
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == answer.TraceID() && s.SpanKind() == trace.SpanKindServer && s.Parent().IsValid() {
				t.Fatalf("traceparent %q: server span has parent %v, want a new trace", bad, s.Parent())
			}
		}
	}
}

// Probes and scrapes get no span.
func TestHealthzIsNotTraced(t *testing.T) {
	rec := tracingtest.New(t)
	cfg := testConfig()
	cfg.Tracer = rec.Tracer
	e := newEnv(t, cfg)
	r := e.do(http.MethodGet, "/healthz", "")
	if r.Code != http.StatusOK || r.Header().Get(messages.HeaderTraceparent) != "" || len(rec.Ended()) != 0 {
		t.Fatalf("/healthz: %d, traceparent %q, %d spans", r.Code, r.Header().Get(messages.HeaderTraceparent), len(rec.Ended()))
	}
}

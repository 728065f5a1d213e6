package drills

import (
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"sensorhub/internal/testenv"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// otlpSpan is one span an OTLP receiver got, with its service.
type otlpSpan struct {
	service string
	span    *tracepb.Span
}

func (s otlpSpan) attr(key string) string {
	for _, kv := range s.span.GetAttributes() {
		if kv.GetKey() == key {
			v := kv.GetValue()
			switch {
			case v.GetStringValue() != "":
				return v.GetStringValue()
			case v.GetIntValue() != 0:
				return fmt.Sprint(v.GetIntValue())
			}
			return v.String()
		}
	}
	return ""
}

// otlpReceiver is an in-process OTLP/HTTP collector: it accepts POST
// /v1/traces (protobuf, gzip or not) and keeps every span.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []otlpSpan
	bad   []string // requests it could not decode
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(r.serve)}}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != tracing.TracesPath {
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail(w, err)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 32<<20))
	if err != nil {
		r.fail(w, err)
		return
	}
	var exp coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &exp); err != nil {
		r.fail(w, err)
		return
	}
	r.mu.Lock()
	for _, rs := range exp.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, otlpSpan{service: service, span: s})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *otlpReceiver) fail(w http.ResponseWriter, err error) {
	r.mu.Lock()
	r.bad = append(r.bad, err.Error())
	r.mu.Unlock()
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// undecodable returns the errors of the requests it refused.
func (r *otlpReceiver) undecodable() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// trace returns the spans of traceID (hex) received so far.
func (r *otlpReceiver) trace(traceID string) []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []otlpSpan
	for _, s := range r.spans {
		if hex.EncodeToString(s.span.GetTraceId()) == traceID {
			out = append(out, s)
		}
	}
	return out
}

// The "done when": one submission through the edge, with the
// roles as separate processes exporting to an OTLP receiver, is one trace
// whose spans cover every hop from the HTTP edge to the Kafka write, each
// the child of the one before; the answer's traceparent names it, so does
// the Kafka record's, and the edge's log line of the request carries its
// trace_id.
func TestOneTraceFromTheEdgeToKafka(t *testing.T) {
	recv := newOTLPReceiver(t)
	c := newCluster(t, clusterOptions{env: []string{
		"SENSORHUB_OTLP_ENDPOINT=" + recv.srv.URL, // the path is added
		"SENSORHUB_LOG_LEVEL=debug",               // the edge's line per request
	}})
	token := c.token(t)
	r, testID := c.submit(token)
	if testID == "" {
		t.Fatalf("submit: %s", r)
	}
	answer := r.header.Get(messages.HeaderTraceparent)
	parts := strings.Split(answer, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		t.Fatalf("answer's traceparent %q is not W3C", answer)
	}
	traceID, edgeSpanID := parts[1], parts[2]

	subject := c.subj.SensorSubmit()
	event := c.subj.Event("temperature", messages.EventKindCompleted)
	// The hops in order, each the parent of the next but where noted.
	hops := []struct {
		service, name string
		kind          tracepb.Span_SpanKind
		parent        string // the hop whose span is the parent ("" for the first)
	}{
		{"sensorhub-edge", "POST /test/sensor/{sensor_type}", tracepb.Span_SPAN_KIND_SERVER, ""},
		{"sensorhub-edge", "request " + subject, tracepb.Span_SPAN_KIND_CLIENT, "POST /test/sensor/{sensor_type}"},
		{"sensorhub-sensor", "process " + subject, tracepb.Span_SPAN_KIND_SERVER, "request " + subject},
		{"sensorhub-sensor", "insert tests", tracepb.Span_SPAN_KIND_INTERNAL, "process " + subject},
		{"sensorhub-sensor", "evaluate test", tracepb.Span_SPAN_KIND_INTERNAL, "process " + subject},
		{"sensorhub-sensor", "complete tests", tracepb.Span_SPAN_KIND_INTERNAL, "evaluate test"},
		{"sensorhub-sensor", "publish " + event, tracepb.Span_SPAN_KIND_PRODUCER, "complete tests"},
		{"sensorhub-bridge", "send " + messages.DefaultKafkaTopic, tracepb.Span_SPAN_KIND_PRODUCER, "publish " + event},
	}
	byName := map[string]otlpSpan{}
	testenv.EventuallyState(t, "one trace with a span of every hop", func() (bool, string) {
		byName = map[string]otlpSpan{}
		for _, s := range recv.trace(traceID) {
			byName[s.span.GetName()] = s
		}
		var missing []string
		for _, h := range hops {
			if _, ok := byName[h.name]; !ok {
				missing = append(missing, h.name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %q of %d spans received (undecodable requests: %v)", missing, len(recv.trace(traceID)), recv.undecodable())
	})
	for _, h := range hops {
		s := byName[h.name]
		if s.service != h.service || s.span.GetKind() != h.kind {
			t.Errorf("%q: service %q, kind %v; want %q, %v", h.name, s.service, s.span.GetKind(), h.service, h.kind)
		}
		parent := hex.EncodeToString(s.span.GetParentSpanId())
		if h.parent == "" {
			if parent != "" {
				t.Errorf("%q: parent %s, want none (the client sent no traceparent)", h.name, parent)
			}
			if id := hex.EncodeToString(s.span.GetSpanId()); id != edgeSpanID {
				t.Errorf("%q: span %s, the answer names %s", h.name, id, edgeSpanID)
			}
			continue
		}
		if want := hex.EncodeToString(byName[h.parent].span.GetSpanId()); parent != want {
			t.Errorf("%q: parent %s, want %q (%s)", h.name, parent, h.parent, want)
		}
	}
	for name, want := range map[string]map[string]string{
		"request " + subject: {"messaging.system": "nats", "messaging.destination.name": subject,
			"messaging.operation.type": "send", "messaging.operation.name": "request"},
		"process " + subject: {"messaging.system": "nats", "messaging.destination.name": subject,
			"messaging.operation.type": "process", "sensorhub.test_id": testID},
		"publish " + event: {"messaging.system": "nats", "messaging.destination.name": event, "messaging.operation.type": "send"},
		"send " + messages.DefaultKafkaTopic: {"messaging.system": "kafka", "messaging.destination.name": messages.DefaultKafkaTopic,
			"messaging.operation.type": "send"},
		"POST /test/sensor/{sensor_type}": {"http.route": "/test/sensor/{sensor_type}", "http.response.status_code": "202"},
	} {
		for k, v := range want {
			if got := byName[name].attr(k); got != v {
				t.Errorf("%q: %s = %q, want %q", name, k, got, v)
			}
		}
	}

	// The Kafka record of the test names the same trace, at the bridge's span.
	var record string
	testenv.EventuallyState(t, "the test's record in Kafka", func() (bool, string) {
		recs, err := testenv.ReadAllWithin(c.kafka.Addr(), messages.DefaultKafkaTopic, 1, requestTimeout)
		if err != nil {
			return false, err.Error()
		}
		for _, m := range recs {
			if testenv.KafkaHeader(m, messages.KafkaHeaderCESubject) == testID {
				record = testenv.KafkaHeader(m, messages.KafkaHeaderTraceparent)
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d records, none of test %s", len(recs), testID)
	})
	bridgeSpan := hex.EncodeToString(byName["send "+messages.DefaultKafkaTopic].span.GetSpanId())
	if want := "00-" + traceID + "-" + bridgeSpan + "-01"; record != want {
		t.Errorf("kafka record traceparent %q, want %q", record, want)
	}

	// The edge's log line of the request carries the trace id.
	line, ok := c.proc(roleEdge).findLog(func(l map[string]any) bool {
		return l["msg"] == "http request" && l["route"] == "POST /test/sensor/{sensor_type}"
	})
	if !ok {
		t.Fatal(`no "http request" log line of the submission`)
	}
	if line[tracing.LogTraceID] != traceID || line[tracing.LogSpanID] != edgeSpanID {
		t.Errorf("edge log line %v: want trace_id %s, span_id %s", line, traceID, edgeSpanID)
	}
	if bad := recv.undecodable(); len(bad) > 0 {
		t.Errorf("the receiver could not decode: %v", errors.New(strings.Join(bad, "; ")))
	}
}

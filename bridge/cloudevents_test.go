package bridge_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/segmentio/kafka-go"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// kafkaCloudEvent reads a Kafka record as the CloudEvents Kafka protocol
// binding does in binary content mode: attributes from the "ce_" headers,
// the data content type from content-type, the data from the value. It is
// the SDK's own decoding (binding.ToEvent) that judges the record; this
// type only hands it the record's parts.
type kafkaCloudEvent struct {
	rec     kafka.Message
	version spec.Version // nil: not a binary-mode CloudEvent
}

var kafkaCESpecs = spec.WithPrefix("ce_")

func newKafkaCloudEvent(rec kafka.Message) *kafkaCloudEvent {
	m := &kafkaCloudEvent{rec: rec}
	for _, h := range rec.Headers {
		if h.Key == kafkaCESpecs.PrefixedSpecVersionName() {
			m.version = kafkaCESpecs.Version(string(h.Value))
		}
	}
	return m
}

func (m *kafkaCloudEvent) ReadEncoding() binding.Encoding {
	if m.version != nil {
		return binding.EncodingBinary
	}
	return binding.EncodingUnknown
}

func (m *kafkaCloudEvent) ReadStructured(context.Context, binding.StructuredWriter) error {
	return binding.ErrNotStructured
}

func (m *kafkaCloudEvent) ReadBinary(ctx context.Context, w binding.BinaryWriter) error {
	if m.version == nil {
		return binding.ErrNotBinary
	}
	for _, h := range m.rec.Headers {
		var err error
		switch {
		case strings.HasPrefix(h.Key, m.version.Prefix()):
			if attr := m.version.Attribute(h.Key); attr != nil {
				err = w.SetAttribute(attr, string(h.Value))
			} else {
				err = w.SetExtension(strings.TrimPrefix(h.Key, m.version.Prefix()), string(h.Value))
			}
		case h.Key == messages.KafkaHeaderContentType:
			err = w.SetAttribute(m.version.AttributeFromKind(spec.DataContentType), string(h.Value))
		}
		if err != nil {
			return err
		}
	}
	return w.SetData(bytes.NewReader(m.rec.Value))
}

func (m *kafkaCloudEvent) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	attr := m.version.AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	name := attr.PrefixedName()
	if k == spec.DataContentType {
		name = messages.KafkaHeaderContentType
	}
	for _, h := range m.rec.Headers {
		if h.Key == name {
			return attr, string(h.Value)
		}
	}
	return attr, nil
}

func (m *kafkaCloudEvent) GetExtension(name string) any {
	for _, h := range m.rec.Headers {
		if h.Key == m.version.Prefix()+name {
			return string(h.Value)
		}
	}
	return nil
}

func (m *kafkaCloudEvent) Finish(error) error { return nil }

var _ binding.Message = (*kafkaCloudEvent)(nil)

// Every record the bridge writes is a CloudEvent in the binary mode of the
// Kafka binding: the CloudEvents SDK decodes it into an event whose id is
// the event id, type the event type, subject the test id, time the
// completion time and source the deployment's, with the payload unchanged
// as its JSON data; today's headers stay.
func TestRecordsAreCloudEvents(t *testing.T) {
	e := newEnv(t)
	e.start(t, e.config())
	evs := events(20, 4)
	for i := range evs {
		if i%3 == 0 {
			evs[i].Type, evs[i].Status = messages.EventTypeFailed, messages.StatusFailed
		}
		// Sub-millisecond and zone-free instants survive as they are.
		evs[i].CompletedAt = evs[i].CompletedAt.Add(time.Duration(i) * 1234 * time.Nanosecond)
	}
	e.publish(t, evs)

	recs, got := kafkaEvents(t, e, len(evs))
	if len(recs) != len(evs) {
		t.Fatalf("kafka holds %d records, want %d", len(recs), len(evs))
	}
	byID := map[string]messages.TestCompleted{}
	for _, ev := range evs {
		byID[ev.EventID] = ev
	}
	for i, rec := range recs {
		want, ok := byID[got[i].EventID]
		if !ok {
			t.Fatalf("record %d: unknown event %s", i, got[i].EventID)
		}
		ce, err := binding.ToEvent(t.Context(), newKafkaCloudEvent(rec))
		if err != nil {
			t.Fatalf("record %d: the CloudEvents SDK does not decode it: %v (headers %v)", i, err, rec.Headers)
		}
		if err := ce.Validate(); err != nil {
			t.Fatalf("record %d: not a valid CloudEvent: %v", i, err)
		}
		for _, c := range []struct{ attr, got, want string }{
			{"specversion", ce.SpecVersion(), "1.0"},
			{"id", ce.ID(), want.EventID},
			{"type", ce.Type(), want.Type},
			{"source", ce.Source(), "/sensorhub/sensor"},
			{"subject", ce.Subject(), want.TestID},
			{"datacontenttype", ce.DataContentType(), "application/json"},
		} {
			if c.got != c.want {
				t.Errorf("record %d: %s = %q, want %q", i, c.attr, c.got, c.want)
			}
		}
		if !ce.Time().Equal(want.CompletedAt) {
			t.Errorf("record %d: time = %v, want the completion time %v", i, ce.Time(), want.CompletedAt)
		}
		if len(ce.Extensions()) != 0 {
			t.Errorf("record %d: extensions %v, want none", i, ce.Extensions())
		}
		if !bytes.Equal(ce.Data(), rec.Value) {
			t.Errorf("record %d: data is not the payload", i)
		}
		var data messages.TestCompleted
		if err := ce.DataAs(&data); err != nil || data.EventID != want.EventID || data.TestID != want.TestID {
			t.Errorf("record %d: data as TestCompleted = %+v, %v", i, data, err)
		}
		for _, h := range []string{messages.KafkaHeaderEventID, messages.KafkaHeaderEventType,
			messages.KafkaHeaderStream, messages.KafkaHeaderSequence} {
			if testenv.KafkaHeader(rec, h) == "" {
				t.Errorf("record %d: today's header %s is gone", i, h)
			}
		}
	}
	// The attributes are plain text a person reads with kcat too.
	if at := testenv.KafkaHeader(recs[0], messages.KafkaHeaderCETime); !strings.HasPrefix(at, "2025-01-02T03:04:05") || !strings.HasSuffix(at, "Z") {
		t.Errorf("ce_time %q is not RFC 3339 in UTC", at)
	}
}

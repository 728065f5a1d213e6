package messages

import (
	"fmt"
	"strings"
	"time"
)

// EventSchema is the version of the event payload. A change that breaks
// consumers bumps it.
const EventSchema = 1

// Event types, carried in the payload and in the Kafka "event-type" header.
const (
	EventTypeCompleted = "sensor.test.completed"
	EventTypeFailed    = "sensor.test.failed"
)

// TestCompleted is the event of a finished test (completed or failed).
// Exactly one is produced per test, with a stable EventID, and it is
// delivered at least once on every hop: consumers dedupe by EventID.
type TestCompleted struct {
	Schema      int       `json:"schema"`
	EventID     string    `json:"event_id"`
	Type        string    `json:"type"` // EventTypeCompleted or EventTypeFailed
	TestID      string    `json:"test_id"`
	SensorType  string    `json:"sensor_type"`
	SensorID    string    `json:"sensor_id"`
	Owner       string    `json:"owner"`
	Status      string    `json:"status"`
	Verdict     string    `json:"verdict,omitempty"`
	Source      string    `json:"source,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Stats       *Stats    `json:"stats,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CompletedAt time.Time `json:"completed_at"`
}

// Kind is the last subject token of the event: completed or failed.
func (e TestCompleted) Kind() string {
	if e.Type == EventTypeFailed {
		return EventKindFailed
	}
	return EventKindCompleted
}

// EventTypeOfSubject is the event type that an event subject
// (Subjects.Event) names by its last token, or "" when it names none. The
// bridge takes the type from the subject, which every event carries anyway,
// rather than from a header or the payload.
func EventTypeOfSubject(subject string) string {
	i := strings.LastIndexByte(subject, '.')
	switch subject[i+1:] {
	case EventKindCompleted:
		return EventTypeCompleted
	case EventKindFailed:
		return EventTypeFailed
	}
	return ""
}

// Validate checks what the relays rely on.
func (e TestCompleted) Validate() error {
	switch {
	case e.Schema != EventSchema:
		return fmt.Errorf("event schema %d, want %d", e.Schema, EventSchema)
	case e.EventID == "" || e.TestID == "":
		return fmt.Errorf("event without event_id or test_id")
	case e.Type != EventTypeCompleted && e.Type != EventTypeFailed:
		return fmt.Errorf("unknown event type %s", quote(e.Type))
	case !ValidSensorType(e.SensorType):
		return fmt.Errorf("bad sensor type %s", quote(e.SensorType))
	}
	return nil
}

// DecodeEvent parses and validates an event payload (unknown members are
// ignored, so that newer producers do not break older consumers).
func DecodeEvent(data []byte) (TestCompleted, error) {
	var e TestCompleted
	if err := jsonUnmarshalObject(data, &e); err != nil {
		return TestCompleted{}, err
	}
	return e, e.Validate()
}

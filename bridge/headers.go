package bridge

// Kafka record headers the bridge sets on every event. Consumers dedupe by
// HeaderEventID (also in the body as "event_id"); HeaderStream and
// HeaderSequence say where the event sat in JetStream, which orders events
// across bridges.
//
// They are part of the wire contract and belong in messages; they live here
// until that package grows them.
const (
	HeaderEventID     = "event-id"
	HeaderEventType   = "event-type"
	HeaderStream      = "nats-stream"
	HeaderSequence    = "nats-sequence"
	HeaderContentType = "content-type"
	ContentTypeJSON   = "application/json"
)

// NATS headers on a dead letter in SENSOR_EVENTS_DLQ. The original headers
// (the event's Nats-Msg-Id excepted) are kept alongside.
const (
	// HeaderDeadLetterReason says why the event was dead-lettered.
	HeaderDeadLetterReason = "Sensorhub-Dead-Letter-Reason"
	// HeaderOriginalSubject, HeaderOriginalStream and HeaderOriginalSequence
	// locate the event in SENSOR_EVENTS.
	HeaderOriginalSubject  = "Sensorhub-Original-Subject"
	HeaderOriginalStream   = "Sensorhub-Original-Stream"
	HeaderOriginalSequence = "Sensorhub-Original-Sequence"
)

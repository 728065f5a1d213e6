package messages

// Header names. NATS header names are case-sensitive, so every role spells
// them from here.

// Request headers, the same over HTTP and on NATS: the edge copies them
// from the HTTP request to the NATS request, the sensor role reads them.
const (
	HeaderAuthorization  = "Authorization"
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAuthMode is on the edge's HTTP answer when the token was
	// validated by the JWKS fallback.
	HeaderAuthMode = "X-Auth-Mode"
)

// NATS headers on an event in SENSOR_EVENTS, set by the sensor role's
// outbox relay, so that the bridge relays the event without reading its
// payload. The event id travels as Nats-Msg-Id (JetStream's dedup key); the
// event type is the subject's last token (EventTypeOfSubject), so it needs
// no header of its own.
const (
	// HeaderMsgID is JetStream's dedup header; it carries the event id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderSensorID is the event's sensor id: the Kafka record key.
	HeaderSensorID = "Sensorhub-Sensor-Id"
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

// Kafka record headers the bridge sets on every event. Consumers dedupe by
// KafkaHeaderEventID (also in the body as "event_id"); KafkaHeaderStream and
// KafkaHeaderSequence say where the event sat in JetStream, which orders
// events across bridges.
const (
	KafkaHeaderEventID     = "event-id"
	KafkaHeaderEventType   = "event-type"
	KafkaHeaderStream      = "nats-stream"
	KafkaHeaderSequence    = "nats-sequence"
	KafkaHeaderContentType = "content-type"
	ContentTypeJSON        = "application/json"
)

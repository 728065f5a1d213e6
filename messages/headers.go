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
	// HeaderTraceparent is the W3C Trace Context traceparent, in the
	// lower case the standard spells it: on the HTTP request and answer
	// of the edge, on the NATS requests the edge sends, on events in
	// SENSOR_EVENTS and on Kafka records, only while tracing is on
	// (--otlp-endpoint). HTTP matches it without regard to case; the
	// roles write it exactly so on NATS and Kafka.
	HeaderTraceparent = "traceparent"
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
	// HeaderTestID is the event's test id: the CloudEvents subject.
	HeaderTestID = "Sensorhub-Test-Id"
	// HeaderEventTime is when the test completed, in RFC 3339 (UTC, up to
	// microseconds, as the outbox stores it): the CloudEvents time.
	HeaderEventTime = "Sensorhub-Event-Time"
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
	// KafkaHeaderTraceparent names the bridge's span of the write (and
	// with it the submission's trace), while the bridge traces.
	KafkaHeaderTraceparent = HeaderTraceparent
)

// CloudEvents attributes on every Kafka record, in the binary content mode
// of the CloudEvents Kafka protocol binding: the payload is the event data
// (its media type in KafkaHeaderContentType), the attributes are headers
// prefixed "ce_". Consumers that route on CloudEvents (Knative, Dapr,
// Redpanda Connect, the CloudEvents SDKs) read them without a sensorhub
// decoder.
const (
	// KafkaHeaderCESpecVersion is CloudEventsSpecVersion.
	KafkaHeaderCESpecVersion = "ce_specversion"
	// KafkaHeaderCEID is the event id (as KafkaHeaderEventID).
	KafkaHeaderCEID = "ce_id"
	// KafkaHeaderCEType is the event type (as KafkaHeaderEventType).
	KafkaHeaderCEType = "ce_type"
	// KafkaHeaderCESource is Subjects.EventSource: the producer.
	KafkaHeaderCESource = "ce_source"
	// KafkaHeaderCESubject is the test id.
	KafkaHeaderCESubject = "ce_subject"
	// KafkaHeaderCETime is when the test completed (RFC 3339).
	KafkaHeaderCETime = "ce_time"
	// CloudEventsSpecVersion is the CloudEvents version the records follow.
	CloudEventsSpecVersion = "1.0"
)

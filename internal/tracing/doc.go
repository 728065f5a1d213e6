// Package tracing owns sensorhub's OpenTelemetry tracing: the tracer
// provider of a role (OTLP over HTTP, a parent-based sampler, the W3C
// TraceContext format), the few span shapes the roles make (an HTTP
// server span, messaging spans that follow the OpenTelemetry semantic
// conventions) and the traceparent carried between them in HTTP headers,
// NATS headers, the outbox row and Kafka record headers.
//
// Tracing is off unless an endpoint is configured: New returns a nil
// *Tracer then, and every role checks for nil before doing any tracing
// work, so that the hot path allocates no span and writes no header. The
// methods of a nil *Tracer are safe and do nothing.
//
// It must not know about actors, the store or HTTP routes; it only makes
// spans and reads and writes traceparent values.
package tracing

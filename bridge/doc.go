// Package bridge is the bridge role: it relays the completed-test events
// buffered in the JetStream stream SENSOR_EVENTS to Kafka, at least once, in
// order per sensor, and answers sensorhub.bridge.stats and
// sensorhub.bridge.health as the NATS micro service sensorhub-bridge.
//
// The relay (jetstream2kafka.go) pulls batches from the durable consumer
// shared by every bridge process, writes each batch with one kafka-go
// WriteMessages call, and acknowledges a JetStream message only once Kafka
// has acknowledged its record. Kafka failures go through the breaker
// "bridge.kafka": while it is open the bridge stops fetching and probes, so
// events wait in JetStream (the bridge holds no more than the batch it was
// writing, kept from redelivery with InProgress) and drain in order when
// Kafka is back. The bridge does not read payloads: the record key and the
// event id come from the NATS headers the outbox relay sets
// (messages.HeaderSensorID, HeaderMsgID), the event type from the subject's
// last token, and the payload goes to Kafka unchanged. An event Kafka can
// never take (too large, without those headers, or on a subject that names
// no event type) goes to the dead-letter stream with the reason instead of
// blocking the rest.
//
// TLS and SASL to Kafka (transport.go) are built once at Start and shared
// by the writer's transport and the probe's dialer.
//
// The relay runs in a goroutine owned by an actor under the role supervisor
// "bridge": a panic restarts it, and stopping the actor stops the goroutine.
//
// It must not know the sensor role's internals: the only thing it asks of
// it is the outbox backlog, over NATS, for the stats.
package bridge

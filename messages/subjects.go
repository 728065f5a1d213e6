package messages

import (
	"fmt"
	"regexp"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "sensorhub"

// Role names. Each role registers one NATS micro service named
// ServiceName(role) and answers Subjects.Health(role).
const (
	RoleAuth   = "auth"
	RoleSensor = "sensor"
	RoleBridge = "bridge"
	RoleEdge   = "edge"
)

// Roles lists the roles behind the edge that answer a health request, in
// display order.
var Roles = []string{RoleAuth, RoleSensor, RoleBridge}

// Services lists every role with a micro service and a health subject:
// Roles and the edge.
var Services = []string{RoleAuth, RoleSensor, RoleBridge, RoleEdge}

// Names of the JetStream and Kafka resources. They are fixed (not prefixed)
// so that operators find them under the names in the README.
const (
	// StreamEvents buffers completed-test events in front of Kafka.
	StreamEvents = "SENSOR_EVENTS"
	// StreamDeadLetter holds events Kafka refused for good, with the reason.
	StreamDeadLetter = "SENSOR_EVENTS_DLQ"
	// ConsumerBridge is the durable pull consumer shared by all bridges.
	ConsumerBridge = "sensorhub-bridge"
	// BucketKeys is the JetStream KV bucket holding the auth public keys.
	BucketKeys = "sensorhub_auth_keys"
	// KeyJWKS is the key of the JWKS document inside BucketKeys.
	KeyJWKS = "jwks"
	// DefaultKafkaTopic is the Kafka topic events are relayed to.
	DefaultKafkaTopic = "sensor-events"
)

// Event kinds, the last token of an event subject.
const (
	EventKindCompleted = "completed"
	EventKindFailed    = "failed"
)

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Subjects builds every NATS subject under one prefix.
type Subjects struct {
	prefix string
}

// NewSubjects returns the subjects under prefix ("" means DefaultPrefix).
// The prefix must be one or more dot-separated tokens without wildcards.
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixPattern.MatchString(prefix) {
		return Subjects{}, fmt.Errorf("invalid subject prefix %q: want dot-separated tokens of [A-Za-z0-9_-]", prefix)
	}
	return Subjects{prefix: prefix}, nil
}

// DefaultSubjects returns the subjects under DefaultPrefix.
func DefaultSubjects() Subjects { return Subjects{prefix: DefaultPrefix} }

// Prefix returns the prefix every subject starts with.
func (s Subjects) Prefix() string {
	if s.prefix == "" {
		return DefaultPrefix
	}
	return s.prefix
}

func (s Subjects) join(parts ...string) string {
	out := s.Prefix()
	for _, p := range parts {
		out += "." + p
	}
	return out
}

// ServiceName is the NATS micro service name of a role, e.g. "sensorhub-auth".
func (s Subjects) ServiceName(role string) string { return "sensorhub-" + role }

// ServiceStats is the micro discovery subject that every instance of a
// role's service answers with its stats ($SRV.STATS.sensorhub-bridge).
func (s Subjects) ServiceStats(role string) string { return "$SRV.STATS." + s.ServiceName(role) }

// Group is the micro endpoint group of a role, e.g. "sensorhub.auth".
func (s Subjects) Group(role string) string { return s.join(role) }

// AuthToken logs a user in: TokenRequest -> TokenReply.
func (s Subjects) AuthToken() string { return s.join(RoleAuth, "token") }

// AuthValidate checks a token: ValidateRequest -> ValidateReply.
func (s Subjects) AuthValidate() string { return s.join(RoleAuth, "validate") }

// AuthJWKS returns the public keys: {} -> JWKS.
func (s Subjects) AuthJWKS() string { return s.join(RoleAuth, "jwks") }

// SensorSubmit accepts a test: SubmitTest -> TestAccepted.
func (s Subjects) SensorSubmit() string { return s.join(RoleSensor, "submit") }

// SensorResult reads a test: GetResult -> TestRecord.
func (s Subjects) SensorResult() string { return s.join(RoleSensor, "result") }

// SensorTypes lists the catalogue: {} -> SensorTypesReply.
func (s Subjects) SensorTypes() string { return s.join(RoleSensor, "types") }

// SensorOutbox reports the outbox backlog: {} -> OutboxStats.
func (s Subjects) SensorOutbox() string { return s.join(RoleSensor, "outbox") }

// BridgeStats reports the bridge: {} -> BridgeStats.
func (s Subjects) BridgeStats() string { return s.join(RoleBridge, "stats") }

// DeadLetterList pages through SENSOR_EVENTS_DLQ: ListDeadLetters ->
// DeadLetterPage (answered by the bridge; admin only).
func (s Subjects) DeadLetterList() string { return s.join(RoleBridge, "dlq", "list") }

// DeadLetterGet reads one dead letter: GetDeadLetter -> DeadLetterDetail.
func (s Subjects) DeadLetterGet() string { return s.join(RoleBridge, "dlq", "get") }

// DeadLetterReplay writes dead letters to Kafka again:
// ReplayDeadLetters -> DeadLettersDone.
func (s Subjects) DeadLetterReplay() string { return s.join(RoleBridge, "dlq", "replay") }

// DeadLetterPurge deletes dead letters: PurgeDeadLetters -> DeadLettersDone.
func (s Subjects) DeadLetterPurge() string { return s.join(RoleBridge, "dlq", "purge") }

// Health is a role's health endpoint: {} -> HealthReply.
func (s Subjects) Health(role string) string { return s.join(role, "health") }

// ChaosPanic panics a named actor when chaos is enabled: ChaosPanic -> ChaosReply.
func (s Subjects) ChaosPanic() string { return s.join("chaos", "panic") }

// ChaosControl stops and starts what `dev --chaos` runs (Kafka, the
// database's proxy, a role): ChaosControl -> ChaosControlReply.
func (s Subjects) ChaosControl() string { return s.join("chaos", "control") }

// Event is the subject of one event: <prefix>.events.<sensor_type>.<kind>.
func (s Subjects) Event(sensorType, kind string) string {
	return s.join("events", sensorType, kind)
}

// Events matches every event subject, for the stream and for `nats sub`.
func (s Subjects) Events() string { return s.join("events", ">") }

// EventSource is the CloudEvents source of the events of this deployment:
// the URI reference "/<prefix>/sensor" (the sensor role under the subject
// prefix produces them), e.g. /sensorhub/sensor. Source and event id
// together are unique.
func (s Subjects) EventSource() string { return "/" + s.Prefix() + "/" + RoleSensor }

// InboxPrefix is the reply-subject prefix of one identity on the bus: a
// role ("_INBOX_sensor") or a person ("_INBOX_alice"). Each may subscribe
// only below its own prefix, so nobody reads another's replies.
func InboxPrefix(name string) string { return "_INBOX_" + name }

// AuthTokenForwarded logs in a user on behalf of the edge, with the HTTP
// client's address for the rate limits: TokenRequest -> TokenReply. Only the
// edge may publish here, which is what makes that address trustworthy.
func (s Subjects) AuthTokenForwarded() string { return s.join(RoleAuth, "token", "forwarded") }

// DeadLetter is the subject of the dead-letter stream SENSOR_EVENTS_DLQ.
// It is outside Events() so that a dead letter never re-enters the stream.
func (s Subjects) DeadLetter() string { return s.join("deadletter", "events") }

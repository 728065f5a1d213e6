package apispec

import (
	"reflect"
	"strings"

	"sensorhub/messages"
)

// Operation is one request/reply subject of a role's micro service.
type Operation struct {
	ID      string // the AsyncAPI operation id, e.g. "submitTest"
	Role    string // the service that answers (messages.Role*), or "every role"
	Subject func(messages.Subjects) string
	Request reflect.Type
	Reply   reflect.Type
	Headers []Header // request headers the service reads
	Summary string
}

// Header is one message header of an operation or event.
type Header struct {
	Name, Description string
}

var (
	headerAuthorization  = Header{messages.HeaderAuthorization, "Bearer <token> (or the body's token field; the header wins)"}
	headerIdempotencyKey = Header{messages.HeaderIdempotencyKey, "makes a retried submission return the same test id (or the body's idempotency_key)"}
	headerTraceparent    = Header{messages.HeaderTraceparent, "optional W3C Trace Context: a sensor role that traces (--otlp-endpoint) continues the caller's trace; a malformed one is ignored"}
)

func typ[T any]() reflect.Type { return reflect.TypeFor[T]() }

// healthOf is the health operation of one role.
func healthOf(role string) Operation {
	return Operation{
		ID: role + "Health", Role: role, Subject: func(s messages.Subjects) string { return s.Health(role) },
		Request: typ[messages.Empty](), Reply: typ[messages.HealthReply](),
		Summary: "the " + role + " role's dependencies and circuit breakers",
	}
}

// Operations is every request/reply subject on the bus. The test holds it
// against messages.Subjects: a subject builder that is not here fails it.
func Operations() []Operation {
	ops := []Operation{
		{ID: "login", Role: messages.RoleAuth, Subject: messages.Subjects.AuthToken,
			Request: typ[messages.TokenRequest](), Reply: typ[messages.TokenReply](),
			Summary: "log a user in: a signed access token"},
		{ID: "loginForwarded", Role: messages.RoleAuth, Subject: messages.Subjects.AuthTokenForwarded,
			Request: typ[messages.TokenRequest](), Reply: typ[messages.TokenReply](),
			Summary: "log a user in on behalf of the edge, with the HTTP client's address (only the edge may publish here)"},
		{ID: "validateToken", Role: messages.RoleAuth, Subject: messages.Subjects.AuthValidate,
			Request: typ[messages.ValidateRequest](), Reply: typ[messages.ValidateReply](),
			Summary: "check a token, and that its user is still enabled"},
		{ID: "getJWKS", Role: messages.RoleAuth, Subject: messages.Subjects.AuthJWKS,
			Request: typ[messages.Empty](), Reply: typ[messages.JWKS](),
			Summary: "the public keys that tokens are signed with"},
		{ID: "submitTest", Role: messages.RoleSensor, Subject: messages.Subjects.SensorSubmit,
			Request: typ[messages.SubmitTest](), Reply: typ[messages.TestAccepted](),
			Headers: []Header{headerAuthorization, headerIdempotencyKey, headerTraceparent},
			Summary: "accept a sensor test: the reply comes once it is committed, with status processing"},
		{ID: "getResult", Role: messages.RoleSensor, Subject: messages.Subjects.SensorResult,
			Request: typ[messages.GetResult](), Reply: typ[messages.TestRecord](),
			Headers: []Header{headerAuthorization},
			Summary: "read a test: processing, or completed or failed with the verdict"},
		{ID: "listSensorTypes", Role: messages.RoleSensor, Subject: messages.Subjects.SensorTypes,
			Request: typ[messages.Empty](), Reply: typ[messages.SensorTypesReply](),
			Summary: "the sensor catalogue"},
		{ID: "getOutboxStats", Role: messages.RoleSensor, Subject: messages.Subjects.SensorOutbox,
			Request: typ[messages.Empty](), Reply: typ[messages.OutboxStats](),
			Summary: "events not yet in JetStream"},
		{ID: "getBridgeStats", Role: messages.RoleBridge, Subject: messages.Subjects.BridgeStats,
			Request: typ[messages.Empty](), Reply: typ[messages.BridgeStats](),
			Summary: "the bridge's relay to Kafka"},
		{ID: "listDeadLetters", Role: messages.RoleBridge, Subject: messages.Subjects.DeadLetterList,
			Request: typ[messages.ListDeadLetters](), Reply: typ[messages.DeadLetterPage](),
			Summary: "a page of the dead letters in " + messages.StreamDeadLetter + ", oldest first, with their reasons (admin only)"},
		{ID: "getDeadLetter", Role: messages.RoleBridge, Subject: messages.Subjects.DeadLetterGet,
			Request: typ[messages.GetDeadLetter](), Reply: typ[messages.DeadLetterDetail](),
			Summary: "one dead letter with its headers and payload (admin only)"},
		{ID: "replayDeadLetters", Role: messages.RoleBridge, Subject: messages.Subjects.DeadLetterReplay,
			Request: typ[messages.ReplayDeadLetters](), Reply: typ[messages.DeadLettersDone](),
			Summary: "write dead letters to Kafka again with their original event id, removing each from the DLQ once Kafka acknowledged it (admin only)"},
		{ID: "purgeDeadLetters", Role: messages.RoleBridge, Subject: messages.Subjects.DeadLetterPurge,
			Request: typ[messages.PurgeDeadLetters](), Reply: typ[messages.DeadLettersDone](),
			Summary: "delete dead letters for good, with a confirmation (admin only)"},
	}
	for _, role := range messages.Services {
		ops = append(ops, healthOf(role))
	}
	return append(ops, Operation{ID: "panicActor", Role: "every role started with --chaos", Subject: messages.Subjects.ChaosPanic,
		Request: typ[messages.ChaosPanic](), Reply: typ[messages.ChaosReply](),
		Summary: "panic a named actor, to watch its supervisor restart it (admin only)"},
		Operation{ID: "controlChaos", Role: "dev started with --chaos", Subject: messages.Subjects.ChaosControl,
			Request: typ[messages.ChaosControl](), Reply: typ[messages.ChaosControlReply](),
			Summary: "stop or start Kafka, the database or a role, as the failure drills do (admin only)"})
}

// APIVersion is the version of the contract, asyncapi.yaml's info.version
// (not the binary's: natsx.BuildVersion). A change that breaks callers
// bumps it.
const APIVersion = "1.0.0"

// OperationOn is the operation answered on subject under subj, if any.
func OperationOn(subj messages.Subjects, subject string) (Operation, bool) {
	for _, op := range Operations() {
		if op.Subject(subj) == subject {
			return op, true
		}
	}
	return Operation{}, false
}

// Endpoint metadata keys of the micro services ($SRV.INFO, `nats micro
// info`).
const (
	MetadataRequestSchema     = "request_schema"
	MetadataReplySchema       = "reply_schema"
	MetadataAsyncAPIOperation = "asyncapi_operation"
)

// Metadata is the micro service endpoint metadata of op: its request and
// reply schemas (components/schemas of asyncapi.yaml, the Go types of
// package messages) and its operation id in asyncapi.yaml.
func (op Operation) Metadata() map[string]string {
	return map[string]string{
		MetadataRequestSchema:     op.Request.Name(),
		MetadataReplySchema:       op.Reply.Name(),
		MetadataAsyncAPIOperation: op.ID,
	}
}

// Event and Kafka headers.
var (
	eventHeaders = []Header{
		{messages.HeaderMsgID, "the event id: JetStream drops a re-published event with the same id within the stream's duplicate window"},
		{messages.HeaderSensorID, "the sensor id: the bridge keys the Kafka record by it"},
		{messages.HeaderTestID, "the test id: the Kafka record's ce_subject"},
		{messages.HeaderEventTime, "when the test completed (RFC 3339, UTC): the Kafka record's ce_time"},
		{messages.HeaderTraceparent, "W3C Trace Context of the span that published the event, only while the sensor role traces (--otlp-endpoint): the submission's trace, which the bridge continues"},
	}
	deadLetterHeaders = []Header{
		{messages.HeaderDeadLetterReason, "why the bridge could not relay the event"},
		{messages.HeaderOriginalSubject, "the event's subject in " + messages.StreamEvents},
		{messages.HeaderOriginalStream, "the stream the event came from"},
		{messages.HeaderOriginalSequence, "the event's sequence in that stream"},
	}
	kafkaHeaders = []Header{
		{messages.KafkaHeaderEventID, "the event id (also event_id in the body): consumers dedupe by it"},
		{messages.KafkaHeaderEventType, messages.EventTypeCompleted + " or " + messages.EventTypeFailed},
		{messages.KafkaHeaderStream, "the JetStream stream the event was relayed from"},
		{messages.KafkaHeaderSequence, "the event's sequence in that stream: orders events across bridges"},
		{messages.KafkaHeaderContentType, messages.ContentTypeJSON + " (the CloudEvents datacontenttype)"},
		{messages.KafkaHeaderCESpecVersion, "CloudEvents (binary content mode of the Kafka binding): " + messages.CloudEventsSpecVersion},
		{messages.KafkaHeaderCEID, "CloudEvents id: the event id"},
		{messages.KafkaHeaderCEType, "CloudEvents type: " + messages.EventTypeCompleted + " or " + messages.EventTypeFailed},
		{messages.KafkaHeaderCESource, "CloudEvents source: /<subject prefix>/sensor, e.g. " + messages.DefaultSubjects().EventSource()},
		{messages.KafkaHeaderCESubject, "CloudEvents subject: the test id"},
		{messages.KafkaHeaderCETime, "CloudEvents time: when the test completed (RFC 3339, UTC)"},
		{messages.KafkaHeaderTraceparent, "W3C Trace Context of the bridge's span of the write, in the submission's trace; only while the bridge traces (--otlp-endpoint) and the event carried one"},
	}
)

// Document is the AsyncAPI 3 description of the bus and the Kafka topic
// under the default subject prefix, with the message schemas generated
// from the Go types of package messages and their doc comments.
func Document(version string, docs Docs) *Map {
	subj := messages.DefaultSubjects()
	sc := newSchemas(docs)
	channels, operations, msgs := NewMap(), NewMap(), NewMap()

	message := func(name string, t reflect.Type, headers []Header) *Map {
		m := NewMap().Set("name", name).Set("contentType", messages.ContentTypeJSON)
		if t != nil {
			m.Set("payload", sc.ref(t))
		} else {
			m.Set("payload", NewMap().Set("description", "the original event's payload, unchanged (it may not be valid JSON: it was refused)"))
		}
		if len(headers) > 0 {
			m.Set("headers", headerSchema(headers))
		}
		if d := docs[name]; d != "" {
			m.Set("summary", firstSentence(d))
		}
		msgs.Set(name, m)
		return NewMap().Set("$ref", "#/components/messages/"+name)
	}
	errRef := message("Error", typ[messages.Error](), nil)

	inboxMsgs := NewMap()
	channels.Set("inbox", NewMap().
		Set("address", nil).
		Set("messages", inboxMsgs).
		Set("description", "The requester's inbox: every identity may read only below its own prefix "+
			messages.InboxPrefix("<identity>")+".> (a role's name, or a person's username)."))
	for _, op := range Operations() {
		addr := op.Subject(subj)
		req := message(op.Request.Name(), op.Request, op.Headers)
		rep := message(op.Reply.Name(), op.Reply, nil)
		channels.Set(op.ID, NewMap().
			Set("address", addr).
			Set("description", "Answered by "+serviceOf(subj, op.Role)+".").
			Set("messages", NewMap().Set(refName(req), req)))
		operations.Set(op.ID, NewMap().
			Set("action", "receive").
			Set("channel", NewMap().Set("$ref", "#/channels/"+op.ID)).
			Set("messages", []any{NewMap().Set("$ref", "#/channels/"+op.ID+"/messages/"+refName(req))}).
			Set("summary", op.Summary).
			Set("reply", NewMap().
				Set("channel", NewMap().Set("$ref", "#/channels/inbox")).
				Set("messages", []any{inboxRef(rep), inboxRef(errRef)})))
		inboxMsgs.Set(refName(rep), rep)
	}
	inboxMsgs.Set(refName(errRef), errRef)

	event := message("TestCompleted", typ[messages.TestCompleted](), eventHeaders)
	channels.Set("events", NewMap().
		Set("address", subj.Event("{sensorType}", "{kind}")).
		Set("description", "Every finished test, once, stored in the JetStream stream "+messages.StreamEvents+
			" (work queue, discard new) and relayed to Kafka by the bridges through the durable consumer "+messages.ConsumerBridge+
			". `nats sub '"+subj.Events()+"'` shows them live.").
		Set("parameters", NewMap().
			Set("sensorType", NewMap().Set("description", "the sensor type of the test (GET /sensor/types)")).
			Set("kind", NewMap().Set("enum", []string{messages.EventKindCompleted, messages.EventKindFailed}).
				Set("description", "the event type: "+messages.EventKindCompleted+" is "+messages.EventTypeCompleted+", "+
					messages.EventKindFailed+" is "+messages.EventTypeFailed))).
		Set("messages", NewMap().Set("TestCompleted", event)))
	operations.Set("publishEvent", NewMap().Set("action", "send").
		Set("channel", NewMap().Set("$ref", "#/channels/events")).
		Set("summary", "the sensor role's outbox relay stores each event in "+messages.StreamEvents+" after its test's completion commits"))
	operations.Set("relayEvent", NewMap().Set("action", "receive").
		Set("channel", NewMap().Set("$ref", "#/channels/events")).
		Set("summary", "the bridges pull events from "+messages.ConsumerBridge+" and acknowledge each once Kafka has it"))

	dead := message("DeadLetter", nil, deadLetterHeaders)
	channels.Set("deadLetters", NewMap().
		Set("address", subj.DeadLetter()).
		Set("description", "Events Kafka can never take (too large, or without the headers the bridge relays by), in the stream "+
			messages.StreamDeadLetter+" with the reason; the original headers are kept alongside.").
		Set("messages", NewMap().Set("DeadLetter", dead)))
	operations.Set("deadLetterEvent", NewMap().Set("action", "send").
		Set("channel", NewMap().Set("$ref", "#/channels/deadLetters")).
		Set("summary", "the bridge moves an event it can never relay here instead of blocking the rest"))

	record := message("KafkaRecord", typ[messages.TestCompleted](), kafkaHeaders)
	msgs.Get("KafkaRecord").(*Map).
		Set("summary", "an event as a Kafka record: the payload as it was on NATS, keyed by the sensor id").
		Set("bindings", NewMap().Set("kafka", NewMap().
			Set("key", NewMap().Set("type", "string").Set("description", "the sensor id: one partition per sensor, in order")).
			Set("bindingVersion", "0.5.0")))
	channels.Set("kafkaEvents", NewMap().
		Set("address", messages.DefaultKafkaTopic).
		Set("servers", []any{NewMap().Set("$ref", "#/servers/kafka")}).
		Set("description", "The Kafka topic the bridges write every event to (acks from all in-sync replicas); delivery is at least once, so consumers dedupe by the event-id header.").
		Set("messages", NewMap().Set("KafkaRecord", record)).
		Set("bindings", NewMap().Set("kafka", NewMap().Set("topic", messages.DefaultKafkaTopic).Set("bindingVersion", "0.5.0"))))
	operations.Set("writeKafkaRecord", NewMap().Set("action", "send").
		Set("channel", NewMap().Set("$ref", "#/channels/kafkaEvents")).
		Set("summary", "the bridge writes each event to Kafka"))

	// NATS channels are on the NATS server only.
	for _, k := range channels.Keys() {
		if c := channels.Get(k).(*Map); !c.Has("servers") {
			c.Set("servers", []any{NewMap().Set("$ref", "#/servers/nats")})
		}
	}

	schemas := NewMap()
	for _, name := range sc.order {
		schemas.Set(name, sc.named[name])
	}
	codes := make([]string, 0)
	for _, c := range messages.Codes() {
		codes = append(codes, string(c))
	}
	if e, ok := sc.named["Error"]; ok {
		props := e.Get("properties").(*Map)
		props.Get("code").(*Map).Set("enum", codes)
	}

	return NewMap().
		Set("asyncapi", "3.0.0").
		Set("info", NewMap().
			Set("title", "sensorhub").
			Set("version", version).
			Set("description", "The messages of sensorhub's roles on NATS (request/reply through NATS micro services, "+
				"events through JetStream) and the Kafka topic the bridges fill. Subjects are shown under the default prefix "+
				messages.DefaultPrefix+"; every role takes --subject-prefix. Generated from package messages: do not edit by hand.")).
		Set("defaultContentType", messages.ContentTypeJSON).
		Set("servers", NewMap().
			Set("nats", NewMap().Set("host", "127.0.0.1:4222").Set("protocol", "nats").
				Set("description", "NATS with JetStream; every connection has an identity (a role's nkey, or a person through the auth callout)")).
			Set("kafka", NewMap().Set("host", "127.0.0.1:9092").Set("protocol", "kafka").
				Set("description", "Kafka (in dev, the embedded broker)"))).
		Set("channels", channels).
		Set("operations", operations).
		Set("components", NewMap().Set("messages", msgs).Set("schemas", schemas))
}

func serviceOf(subj messages.Subjects, role string) string {
	switch role {
	case messages.RoleAuth, messages.RoleSensor, messages.RoleBridge, messages.RoleEdge:
		return "the micro service " + subj.ServiceName(role)
	}
	return role
}

// inboxRef refers to a reply message as the inbox channel lists it
// (AsyncAPI 3: a reply's messages are those of its channel).
func inboxRef(ref *Map) *Map {
	return NewMap().Set("$ref", "#/channels/inbox/messages/"+refName(ref))
}

func refName(ref *Map) string {
	s, _ := ref.Get("$ref").(string)
	return s[strings.LastIndexByte(s, '/')+1:]
}

func headerSchema(hs []Header) *Map {
	props := NewMap()
	for _, h := range hs {
		props.Set(h.Name, NewMap().Set("type", "string").Set("description", h.Description))
	}
	return NewMap().Set("type", "object").Set("properties", props)
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

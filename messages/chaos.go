package messages

// ChaosPanic asks a role to panic one of its actors (only with --chaos).
type ChaosPanic struct {
	Actor string `json:"actor"`
}

// DecodeChaosPanic parses a chaos request.
func DecodeChaosPanic(data []byte) (ChaosPanic, error) {
	var r ChaosPanic
	if err := decodeStrict(data, &r, false); err != nil {
		return ChaosPanic{}, err
	}
	if r.Actor == "" || len(r.Actor) > 64 {
		return ChaosPanic{}, &Error{Code: CodeBadRequest, Message: "actor is required"}
	}
	return r, nil
}

// ChaosReply confirms that the actor was sent a panic.
type ChaosReply struct {
	Actor    string `json:"actor"`
	Panicked bool   `json:"panicked"`
}

// Chaos control targets: the dependencies and roles that `dev --chaos`
// can take away and give back (ChaosControl.Target).
const (
	ChaosTargetKafka    = "kafka"    // the embedded Kafka-protocol broker
	ChaosTargetDatabase = "database" // the store: PostgreSQL through a fault proxy, SQLite at its boundary
)

// Chaos control actions (ChaosControl.Action). Status changes nothing.
const (
	ChaosActionStop   = "stop"
	ChaosActionStart  = "start"
	ChaosActionStatus = "status"
)

// ChaosControl asks `dev --chaos` to take a dependency or a role away, or
// to give it back, as the failure drills do (sensorhub.chaos.control; only
// admin may ask). The target is a ChaosTarget* constant or a role name.
type ChaosControl struct {
	Target string `json:"target"`
	Action string `json:"action"`
}

// DecodeChaosControl parses a chaos control request. Which targets exist
// is the answering process's business (it names them in its error).
func DecodeChaosControl(data []byte) (ChaosControl, error) {
	var r ChaosControl
	if err := decodeStrict(data, &r, false); err != nil {
		return ChaosControl{}, err
	}
	if r.Target == "" || len(r.Target) > 32 {
		return ChaosControl{}, &Error{Code: CodeBadRequest, Message: "target is required (at most 32 bytes)"}
	}
	switch r.Action {
	case ChaosActionStop, ChaosActionStart, ChaosActionStatus:
	default:
		return ChaosControl{}, &Error{Code: CodeBadRequest, Message: "action must be stop, start or status"}
	}
	return r, nil
}

// ChaosControlReply tells the state of every target after the request:
// "running" or "stopped" by target name.
type ChaosControlReply struct {
	Target string            `json:"target"`
	Action string            `json:"action"`
	States map[string]string `json:"states"`
}

// Chaos control target states (ChaosControlReply.States).
const (
	ChaosStateRunning = "running"
	ChaosStateStopped = "stopped"
)

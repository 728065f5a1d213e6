package natsauth

import (
	"sensorhub/messages"
)

// Permissions is what one identity may publish and subscribe to. An empty
// list means nothing (never "everything": the renderers keep it so).
type Permissions struct {
	Publish   []string
	Subscribe []string
	// AllowResponses lets a responder publish one reply to the reply
	// subject of each request it received, and nothing else there.
	AllowResponses bool
}

// The NATS API subjects the roles use, built from the resource names in
// messages so that a renamed stream cannot leave a stale permission.
const (
	srvAll      = "$SRV.>"
	calloutSubj = "$SYS.REQ.USER.AUTH"
	jsAPI       = "$JS.API."
)

// streamAdmin may create, update and read one stream (and the account's
// JetStream info, which the client asks before creating a KV bucket).
func streamAdmin(stream string) []string {
	return []string{
		jsAPI + "INFO",
		jsAPI + "STREAM.INFO." + stream,
		jsAPI + "STREAM.CREATE." + stream,
		jsAPI + "STREAM.UPDATE." + stream,
	}
}

// kvReader may read and watch the JWKS bucket (direct gets, an ordered
// consumer for the watch, its flow control), not write it.
func kvReader() []string {
	s := "KV_" + messages.BucketKeys
	return []string{
		jsAPI + "STREAM.INFO." + s,
		jsAPI + "STREAM.MSG.GET." + s,
		jsAPI + "DIRECT.GET." + s + ".>",
		jsAPI + "CONSUMER.CREATE." + s + ".>",
		jsAPI + "CONSUMER.DELETE." + s + ".>",
		jsAPI + "CONSUMER.INFO." + s + ".>",
		"$JS.FC." + s + ".>",
	}
}

// RolePermissions is the table of the roles: each answers only its own
// service subjects (and the micro discovery subjects), replies only to the
// requests it got, requests only what it calls (and its own health, for
// `sensorhub health` with the role's credentials), and reads only its inbox.
// JetStream: only auth writes the key bucket; only the sensor role
// publishes events; only the bridge consumes them and writes dead letters;
// nobody may purge or delete a stream.
func RolePermissions(subj messages.Subjects, role string) Permissions {
	inbox := messages.InboxPrefix(role) + ".>"
	health := func(roles ...string) []string {
		var out []string
		for _, r := range roles {
			out = append(out, subj.Health(r))
		}
		return out
	}
	switch role {
	case messages.RoleAuth:
		kv := "KV_" + messages.BucketKeys
		return Permissions{
			Subscribe:      []string{subj.Group(messages.RoleAuth) + ".>", srvAll, subj.ChaosPanic(), subj.ChaosControl(), calloutSubj, inbox},
			Publish:        append(streamAdmin(kv), subj.Health(role), "$KV."+messages.BucketKeys+".>", jsAPI+"STREAM.MSG.GET."+kv, jsAPI+"DIRECT.GET."+kv+".>"),
			AllowResponses: true,
		}
	case messages.RoleSensor:
		pub := []string{subj.AuthValidate(), subj.Events(), subj.Health(role)}
		// It may read back its own events by sequence (nothing it did not
		// write), which is how the tests check what reached the stream.
		pub = append(pub, streamAdmin(messages.StreamEvents)...)
		pub = append(pub, jsAPI+"STREAM.MSG.GET."+messages.StreamEvents)
		pub = append(pub, kvReader()...)
		return Permissions{
			Subscribe:      []string{subj.Group(messages.RoleSensor) + ".>", srvAll, subj.ChaosPanic(), inbox},
			Publish:        pub,
			AllowResponses: true,
		}
	case messages.RoleBridge:
		ev, durable := messages.StreamEvents, messages.ConsumerBridge
		// ServiceStats: any bridge answers the tier's stats by asking
		// every bridge instance for its own.
		pub := []string{subj.SensorOutbox(), subj.DeadLetter(), subj.Health(role), subj.ServiceStats(role)}
		pub = append(pub, streamAdmin(ev)...)
		pub = append(pub, streamAdmin(messages.StreamDeadLetter)...)
		pub = append(pub, jsAPI+"STREAM.MSG.GET."+messages.StreamDeadLetter) // reading its dead letters back
		// Removing one dead letter once replayed or purged (sensorhub dlq),
		// by sequence: never a purge or a delete of the stream.
		pub = append(pub, jsAPI+"STREAM.MSG.DELETE."+messages.StreamDeadLetter)
		pub = append(pub,
			jsAPI+"CONSUMER.CREATE."+ev+"."+durable,
			jsAPI+"CONSUMER.CREATE."+ev+"."+durable+".>",
			jsAPI+"CONSUMER.DURABLE.CREATE."+ev+"."+durable,
			jsAPI+"CONSUMER.INFO."+ev+"."+durable,
			jsAPI+"CONSUMER.MSG.NEXT."+ev+"."+durable,
			"$JS.ACK."+ev+"."+durable+".>",
		)
		return Permissions{
			Subscribe:      []string{subj.Group(messages.RoleBridge) + ".>", srvAll, subj.ChaosPanic(), inbox},
			Publish:        pub,
			AllowResponses: true,
		}
	case messages.RoleEdge:
		pub := []string{
			subj.AuthTokenForwarded(), subj.AuthValidate(), subj.AuthJWKS(),
			subj.SensorSubmit(), subj.SensorResult(), subj.SensorTypes(), subj.BridgeStats(),
		}
		pub = append(pub, health(messages.Roles...)...)
		// The dashboard finds every instance of each role by micro
		// discovery: the stats subject of each service (the other edges'
		// too), nothing else of $SRV.
		for _, r := range messages.Services {
			pub = append(pub, subj.ServiceStats(r))
		}
		// Its own micro service: discovery ($SRV.>) and its health.
		return Permissions{Subscribe: []string{subj.Group(messages.RoleEdge) + ".>", srvAll, inbox}, Publish: pub, AllowResponses: true}
	}
	return Permissions{} // an unknown role may do nothing
}

// PersonPermissions is what the callout grants a person by sensorhub
// roles: the request subjects of the README and the micro discovery
// subjects, and replies in their own inbox only. Admins may also watch the
// events, send chaos panics (answered only where a role runs with --chaos),
// ask the bridge about its dead letters (list, get, replay, purge: the
// bridge does the JetStream work with its own identity), read JetStream's
// stream and consumer information, and move the event stream's leader on
// a cluster (a step-down). Nobody gets the
// JetStream write or consume API, KV writes, a service subject to answer,
// or _INBOX.>.
func PersonPermissions(subj messages.Subjects, username string, roles []string) Permissions {
	p := Permissions{
		Publish: []string{
			subj.AuthToken(), subj.AuthJWKS(),
			subj.SensorSubmit(), subj.SensorResult(), subj.SensorTypes(),
			subj.BridgeStats(), srvAll,
		},
		Subscribe: []string{messages.InboxPrefix(username) + ".>"},
	}
	for _, r := range messages.Services {
		// Each health subject by name: a wildcard (<prefix>.*.health)
		// would match <prefix>.events.health, inside the event stream.
		p.Publish = append(p.Publish, subj.Health(r))
	}
	for _, r := range roles {
		if r == messages.RoleAdmin {
			p.Subscribe = append(p.Subscribe, subj.Events())
			p.Publish = append(p.Publish, subj.ChaosPanic(), subj.ChaosControl(),
				// The dead letters (sensorhub dlq): the bridge reads,
				// replays and deletes them with its own identity.
				subj.DeadLetterList(), subj.DeadLetterGet(), subj.DeadLetterReplay(), subj.DeadLetterPurge(),
				jsAPI+"INFO",
				jsAPI+"STREAM.NAMES", jsAPI+"STREAM.LIST", jsAPI+"STREAM.INFO.*",
				jsAPI+"CONSUMER.NAMES.*", jsAPI+"CONSUMER.LIST.*", jsAPI+"CONSUMER.INFO.*.*",
				// On a cluster: move the event stream's leader off a node
				// before maintenance (nats stream cluster step-down).
				jsAPI+"STREAM.LEADER.STEPDOWN."+messages.StreamEvents,
			)
			break
		}
	}
	return p
}

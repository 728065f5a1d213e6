package app

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/apispec"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// Every role's micro service describes itself to anyone who may discover
// it (an admin through the callout, as `nats micro info|stats` does):
// $SRV.INFO carries the binary's version, a description and, on every
// endpoint, the request and reply schemas and AsyncAPI operation that
// apispec gives its subject; every apispec operation of a role has its
// endpoint; $SRV.STATS carries the role's breakers in the health
// endpoint's data, as its health reply has them.
func TestServicesDescribeThemselves(t *testing.T) {
	s := newSystem(t)
	s.startAuth()
	s.startSensor()
	s.startBridge()
	s.startEdge()
	addUsers(t, s.realDB)
	nc := person(t, target{natsURL: s.nats.URL()}, "admin", DefaultPassword)
	subj := messages.DefaultSubjects()

	wantBreakers := map[string][]string{
		messages.RoleAuth:   {"auth.database"},
		messages.RoleSensor: {"sensor.database", "sensor.jetstream", "sensor.auth"},
		messages.RoleBridge: {"bridge.kafka"},
		messages.RoleEdge:   {"edge.auth", "edge.sensor", "edge.bridge"},
	}
	served := map[string]bool{} // operation ids with an endpoint
	for _, role := range messages.Services {
		name := subj.ServiceName(role)
		var info micro.Info
		ask(t, nc, "$SRV.INFO."+name, &info)
		if info.Version != natsx.BuildVersion() || info.Description == "" {
			t.Errorf("%s: version %q description %q, want %q and a description", name, info.Version, info.Description, natsx.BuildVersion())
		}
		for _, ep := range info.Endpoints {
			op, ok := apispec.OperationOn(subj, ep.Subject)
			if !ok {
				t.Errorf("%s: endpoint %s on %s is not an operation of apispec", name, ep.Name, ep.Subject)
				continue
			}
			if !maps.Equal(ep.Metadata, op.Metadata()) {
				t.Errorf("%s: endpoint %s metadata %v, want %v", name, ep.Subject, ep.Metadata, op.Metadata())
			}
			if op.Role != role {
				t.Errorf("%s answers %s, which apispec gives to %s", name, ep.Subject, op.Role)
			}
			served[op.ID] = true
		}

		var stats micro.Stats
		ask(t, nc, "$SRV.STATS."+name, &stats)
		var hs messages.HealthStats
		for _, ep := range stats.Endpoints {
			if ep.Subject == subj.Health(role) {
				if err := json.Unmarshal(ep.Data, &hs); err != nil {
					t.Fatalf("%s: health endpoint stats data %s: %v", name, ep.Data, err)
				}
			}
		}
		var hr messages.HealthReply
		ask(t, nc, subj.Health(role), &hr)
		have := slices.Sorted(maps.Keys(hs.CircuitBreakers))
		want := slices.Sorted(maps.Keys(hr.CircuitBreakers))
		if !slices.Equal(have, want) {
			t.Errorf("%s: stats data breakers %v, health reply breakers %v", name, have, want)
		}
		for _, b := range wantBreakers[role] {
			got, ok := hs.CircuitBreakers[b]
			if !ok || got.State != hr.CircuitBreakers[b].State {
				t.Errorf("%s: stats data breaker %s = %+v, health reply %+v", name, b, got, hr.CircuitBreakers[b])
			}
		}
	}
	for _, op := range apispec.Operations() {
		if slices.Contains(messages.Services, op.Role) && !served[op.ID] {
			t.Errorf("apispec operation %s (%s) has no endpoint in %s", op.ID, op.Subject(subj), subj.ServiceName(op.Role))
		}
	}
	// The bridge's own figures stay its stats endpoint's data.
	var stats micro.Stats
	ask(t, nc, "$SRV.STATS."+subj.ServiceName(messages.RoleBridge), &stats)
	for _, ep := range stats.Endpoints {
		if ep.Subject == subj.BridgeStats() {
			var inst messages.BridgeInstance
			if err := json.Unmarshal(ep.Data, &inst); err != nil || inst.ID == "" || inst.Breaker == "" {
				t.Errorf("bridge stats endpoint data %s: %v", ep.Data, err)
			}
		}
	}
}

// ask requests subject with the test's deadline and decodes the JSON reply
// into v, retrying while no one answers yet (a role registering).
func ask(t *testing.T, nc *nats.Conn, subject string, v any) {
	t.Helper()
	testenv.EventuallyState(t, "an answer on "+subject, func() (bool, string) {
		msg, err := nc.RequestWithContext(testenv.Deadline(t), subject, nil)
		if err != nil {
			return false, err.Error()
		}
		if err := json.Unmarshal(msg.Data, v); err != nil {
			return false, fmt.Sprintf("%s: %v", msg.Data, err)
		}
		return true, ""
	})
}

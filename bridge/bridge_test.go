package bridge_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/actors/supervise"
	"sensorhub/bridge"
	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

func TestStartRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*bridge.Config)
		want string
	}{
		{"no brokers", func(c *bridge.Config) { c.Brokers = nil }, "no Kafka brokers"},
		{"ack wait too short", func(c *bridge.Config) {
			c.AckWait = 3 * time.Second
			c.Breaker = breaker.Config{CallTimeout: 2 * time.Second}
		}, "ack wait"},
		{"max ack pending below batch", func(c *bridge.Config) { c.BatchSize, c.MaxAckPending = 100, 50 }, "max ack pending"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bridge.Config{Brokers: []string{"127.0.0.1:1"}}
			tc.mod(&cfg)
			_, err := bridge.Start(context.Background(), nil, nil, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// The micro service answers stats and health over NATS, with the outbox
// backlog when a sensor role answers and -1 when none does.
func TestServiceStatsAndHealth(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	b := e.start(t, cfg)
	evs := events(10, 2)
	e.publish(t, evs)
	waitDistinct(t, e, evs)

	request := func(subject string, out any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
		defer cancel()
		if _, err := natsx.Request(ctx, e.client, subject, nil, nil, out); err != nil {
			t.Fatalf("request %s: %v", subject, err)
		}
	}
	testenv.Eventually(t, "stats over NATS", func() bool {
		var s messages.BridgeStats
		request(e.subj.BridgeStats(), &s)
		return s.Successful == 10 && s.Queued == 0 && s.OutboxBacklog == -1 &&
			s.Breaker == messages.BreakerClosed && s.KafkaReachable
	})

	sub, err := e.pub.Subscribe(e.subj.SensorOutbox(), func(m *nats.Msg) { _ = m.Respond([]byte(`{"backlog":7}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.pub.Flush(); err != nil { // the server knows the stand-in before the bridge asks
		t.Fatal(err)
	}
	var s messages.BridgeStats
	request(e.subj.BridgeStats(), &s)
	if s.OutboxBacklog != 7 {
		t.Fatalf("outbox backlog %d, want 7 from the sensor role", s.OutboxBacklog)
	}

	var h messages.HealthReply
	testenv.Eventually(t, "healthy", func() bool {
		request(e.subj.Health(messages.RoleBridge), &h)
		return h.Status == messages.HealthOK
	})
	for _, dep := range []string{bridge.DepNATS, bridge.DepJetStream, bridge.DepKafka} {
		if d := h.Dependencies[dep]; d.Status != messages.HealthUp || d.Since == nil {
			t.Fatalf("dependency %s: %+v", dep, d)
		}
	}
	if br, ok := h.CircuitBreakers[bridge.BreakerName]; !ok || br.State != messages.BreakerClosed {
		t.Fatalf("breakers: %+v", h.CircuitBreakers)
	}
	if h.Role != messages.RoleBridge || h.Instance == "" {
		t.Fatalf("health reply: %+v", h)
	}

	// An idle bridge notices Kafka going away (and coming back) by itself.
	e.kafka.Stop()
	testenv.Eventually(t, "kafka down while idle", func() bool {
		request(e.subj.Health(messages.RoleBridge), &h)
		return h.Status == messages.HealthDegraded && h.Dependencies[bridge.DepKafka].Status == messages.HealthDown
	})
	if err := e.kafka.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "kafka back while idle", func() bool {
		request(e.subj.Health(messages.RoleBridge), &h)
		return h.Status == messages.HealthOK
	})
	_ = b
}

// A crash of the relay actor is logged and restarted by the role
// supervisor, and relaying goes on.
func TestRelayRestartsAfterCrash(t *testing.T) {
	e := newEnv(t)
	b := e.start(t, e.config())
	evs := events(100, 4)
	e.publish(t, evs[:50])
	waitDistinct(t, e, evs[:50])

	b.system.Root.Send(b.Role().Child(bridge.RelayActor), &supervise.Crash{Reason: "test"})
	testenv.Eventually(t, "relay restarted", func() bool { return b.Role().Restarts(bridge.RelayActor) == 1 })
	e.publish(t, evs[50:])
	waitDistinct(t, e, evs)
}

// Stop leaves no goroutine of the bridge or of its Kafka client behind.
func TestStopLeavesNoGoroutines(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	nc := e.nats.Conn(t, messages.RoleBridge)
	system := supervise.NewSystem(cfg.Logger)
	b, err := bridge.Start(context.Background(), nc, system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := events(300, 5)
	e.publish(t, evs)
	waitDistinct(t, e, evs)
	if err := b.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var leaked string
	defer func() {
		if t.Failed() {
			t.Logf("still running:\n%s", leaked)
		}
	}()
	testenv.Eventually(t, "bridge goroutines gone", func() bool {
		leaked = ""
		buf := make([]byte, 1<<20)
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "sensorhub/bridge.") && !strings.Contains(g, "bridge_test.go") ||
				strings.Contains(g, "segmentio/kafka-go") {
				leaked = g
				return false
			}
		}
		return true
	})
}

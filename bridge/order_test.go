package bridge_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// TestBridgeRestartKeepsOrder: a bridge fetched an event and went away
// without acknowledging it (killed: no release), and events of the same
// sensor came after it. A new bridge does not write those before the
// earlier one: it waits until JetStream redelivers it (AckWait, 2 s in
// the test config), then writes all of them in stream order.
func TestBridgeRestartKeepsOrder(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	// The first bridge creates the durable consumer, then stops.
	first := e.start(t, cfg)
	if err := first.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	evs := events(6, 1) // one sensor, one key
	e.publish(t, evs[:1])
	// A bridge process fetches the first event and dies holding it.
	ctx := testenv.Deadline(t)
	cons, err := e.bridgeJS.Consumer(ctx, messages.StreamEvents, messages.ConsumerBridge)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var held int
	for m := range batch.Messages() {
		if m.Headers().Get(messages.HeaderMsgID) != evs[0].EventID {
			t.Fatalf("fetched %q, want %s", m.Headers().Get(messages.HeaderMsgID), evs[0].EventID)
		}
		held++
	}
	if held != 1 {
		t.Fatalf("fetched %d events, want 1 (%v)", held, batch.Error())
	}

	e.publish(t, evs[1:])
	b := e.start(t, cfg)
	recs, ids := waitDistinct(t, e, evs)
	_, got := kafkaEvents(t, e, recs)
	checkOrderPerSensor(t, got)
	if len(ids) != len(evs) {
		t.Fatalf("kafka holds %d distinct events, want %d", len(ids), len(evs))
	}
	testenv.Eventually(t, "every event acknowledged", func() bool { return stats(t, b).Queued == 0 })
}

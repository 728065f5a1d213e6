package bridge_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"sensorhub/internal/edge"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// GET /kafka/stats through a real edge reports the whole bridge tier: both
// bridges by instance id, and a successful count equal to the records in
// the Kafka topic, which stays true after a bridge that had relayed
// everything so far is restarted (its own count starts again from 0).
func TestTierStatsThroughTheEdge(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	srv, err := edge.New(e.client, edge.Config{Subjects: e.subj, Logger: logger(), RequestTimeout: testenv.Wait(t)})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(web.Close)
	get := func() (messages.BridgeStats, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, web.URL+"/kafka/stats", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var s messages.BridgeStats
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &s) != nil {
			t.Fatalf("GET /kafka/stats: %d %s", resp.StatusCode, body)
		}
		return s, string(body)
	}
	ids := func(s messages.BridgeStats) []string {
		var out []string
		for _, in := range s.Instances {
			out = append(out, in.ID)
		}
		return out
	}
	sumOf := func(s messages.BridgeStats) (n uint64) {
		for _, in := range s.Instances {
			n += in.Successful
		}
		return n
	}
	// tierMatchesKafka waits until the stats show exactly the instances
	// want, nothing queued, and successful = the records Kafka holds.
	tierMatchesKafka := func(what string, want ...string) messages.BridgeStats {
		t.Helper()
		slices.Sort(want)
		var s messages.BridgeStats
		testenv.EventuallyState(t, what, func() (bool, string) {
			records := len(testenv.ReadAll(t, e.kafka.Addr(), messages.DefaultKafkaTopic, 0))
			var body string
			s, body = get()
			ok := slices.Equal(ids(s), want) && s.Queued == 0 && s.SuccessfulFrom == messages.CountKafka &&
				s.Successful == uint64(records) && s.Breaker == messages.BreakerClosed && s.KafkaReachable
			return ok, fmt.Sprintf("kafka holds %d records; /kafka/stats: %s", records, body)
		})
		return s
	}

	// The first bridge relays everything, alone.
	b1 := e.start(t, cfg)
	first := events(300, 5)
	e.publish(t, first)
	waitDistinct(t, e, first)
	b2 := e.start(t, cfg)
	s := tierMatchesKafka("both bridges in the stats, successful = kafka", b1.Instance().ID, b2.Instance().ID)
	if sumOf(s) != s.Successful {
		t.Errorf("the instances relayed %d events between them, kafka holds %d", sumOf(s), s.Successful)
	}

	// Restart the first bridge: a new process, a new instance id, its
	// count from 0; the tier's count still equals what Kafka holds.
	if err := b1.Stop(testenv.Wait(t)); err != nil {
		t.Fatal(err)
	}
	b1 = e.start(t, cfg)
	second := events(500, 5)[300:]
	e.publish(t, second)
	waitDistinct(t, e, append(first, second...))
	s = tierMatchesKafka("after a restart, successful = kafka", b1.Instance().ID, b2.Instance().ID)
	if sumOf(s) >= s.Successful {
		t.Errorf("the live instances count %d events, the tier %d: the restarted bridge's 300 should be missing from the instances only", sumOf(s), s.Successful)
	}
	began := time.Now()
	get()
	t.Logf("tier: successful %d (from %s), instances %d, %d; one GET /kafka/stats took %v",
		s.Successful, s.SuccessfulFrom, s.Instances[0].Successful, s.Instances[1].Successful, time.Since(began))
}

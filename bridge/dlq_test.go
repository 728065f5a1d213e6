package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"sensorhub/internal/kafkadev"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// setTopicMaxMessageBytes sets the topic's max.message.bytes on the broker
// (the fix of an event Kafka refused as too large).
func setTopicMaxMessageBytes(t *testing.T, e *env, n int) {
	t.Helper()
	// A transport of its own, closed after: kafka-go's default transport
	// keeps a pool (and its metadata goroutine) for the process's life,
	// which TestStopLeavesNoGoroutines would find.
	transport := &kafka.Transport{DialTimeout: 2 * time.Second}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(e.kafka.Addr()), Transport: transport}
	resp, err := client.IncrementalAlterConfigs(testCtx(t), &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic,
			ResourceName: messages.DefaultKafkaTopic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{
				{Name: "max.message.bytes", Value: strconv.Itoa(n), ConfigOperation: kafka.ConfigOperationSet},
			},
		}},
	})
	if err == nil {
		for _, r := range resp.Resources {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		t.Fatalf("set max.message.bytes: %v", err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	t.Cleanup(cancel)
	return ctx
}

// An event Kafka refused as too large is listed and shown with its reason;
// a replay fails and changes nothing while the cause is still there, and
// while Kafka is down; once both are fixed it reaches Kafka with its
// original event id (event-id and ce_id) and leaves the DLQ. An event
// that can never be relayed stays until purged; unknown sequences are
// not_found.
func TestDeadLetterListShowReplayPurge(t *testing.T) {
	e := newEnvWith(t, kafkadev.Config{BrokerConfigs: map[string]string{"message.max.bytes": "3000"}})
	b := e.start(t, e.config())

	evs := events(4, 2)
	big := evs[1]
	big.Reason = strings.Repeat("z", 4000)
	poison := evs[2]
	e.publish(t, []messages.TestCompleted{evs[0], big})
	msg := eventMsg(t, e.subj, poison)
	msg.Header.Del(messages.HeaderSensorID)
	e.publishRaw(t, msg)
	e.waitPublished(t)
	e.publish(t, evs[3:])
	waitDistinct(t, e, []messages.TestCompleted{evs[0], evs[3]})
	testenv.Eventually(t, "two dead letters", func() bool {
		s := stats(t, b)
		return s.DeadLettered == 2 && s.Queued == 0
	})

	page, err := b.ListDeadLetters(testCtx(t), messages.ListDeadLetters{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 || len(page.DeadLetters) != 2 || page.Next != 0 {
		t.Fatalf("list: %+v", page)
	}
	// The poison event is dead-lettered on arrival, the oversize one once
	// Kafka refused it: either may come first.
	bigDL, poisonDL := page.DeadLetters[0], page.DeadLetters[1]
	if bigDL.EventID != big.EventID {
		bigDL, poisonDL = poisonDL, bigDL
	}
	dls := []uint64{page.DeadLetters[0].Sequence, page.DeadLetters[1].Sequence}
	if bigDL.EventID != big.EventID || bigDL.TestID != big.TestID || bigDL.OriginalSequence != 2 ||
		bigDL.Subject != e.subj.Event("temperature", messages.EventKindCompleted) || !strings.Contains(bigDL.Reason, "too large") {
		t.Fatalf("the oversize event's dead letter: %+v", bigDL)
	}
	if poisonDL.EventID != poison.EventID || !strings.Contains(poisonDL.Reason, messages.HeaderSensorID) || poisonDL.OriginalSequence != 3 {
		t.Fatalf("the poison event's dead letter: %+v", poisonDL)
	}
	// Pages of one, and a reason filter.
	first, err := b.ListDeadLetters(testCtx(t), messages.ListDeadLetters{Limit: 1})
	if err != nil || len(first.DeadLetters) != 1 || first.Next != dls[0] {
		t.Fatalf("first page of one: %+v %v", first, err)
	}
	second, err := b.ListDeadLetters(testCtx(t), messages.ListDeadLetters{Limit: 1, After: first.Next})
	if err != nil || len(second.DeadLetters) != 1 || second.DeadLetters[0].Sequence != dls[1] || second.Next != 0 {
		t.Fatalf("second page of one: %+v %v", second, err)
	}
	filtered, err := b.ListDeadLetters(testCtx(t), messages.ListDeadLetters{Reason: "too large"})
	if err != nil || len(filtered.DeadLetters) != 1 || filtered.DeadLetters[0].Sequence != bigDL.Sequence {
		t.Fatalf("reason filter: %+v %v", filtered, err)
	}

	d, err := b.DeadLetter(testCtx(t), bigDL.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := big.Encode()
	if d.Payload != string(want) || d.PayloadEncoding != messages.PayloadText ||
		d.Headers[messages.KafkaHeaderEventID][0] != big.EventID || d.Headers[messages.HeaderDeadLetterReason][0] != bigDL.Reason {
		t.Fatalf("show: %+v", d)
	}
	if _, err := b.DeadLetter(testCtx(t), 999); messages.CodeOf(err) != messages.CodeNotFound {
		t.Fatalf("show 999: %v, want not_found", err)
	}

	replay := func(sel messages.DeadLetterSelection) messages.DeadLettersDone {
		t.Helper()
		done, err := b.ReplayDeadLetters(testCtx(t), sel)
		if err != nil {
			t.Fatalf("replay %+v: %v", sel, err)
		}
		return done
	}
	left := func(want ...uint64) {
		t.Helper()
		slices.Sort(want)
		p, err := b.ListDeadLetters(testCtx(t), messages.ListDeadLetters{})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, dl := range p.DeadLetters {
			got = append(got, dl.Sequence)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("dead letters left %v, want %v", got, want)
		}
	}

	// The cause is still there: Kafka refuses it again, it stays.
	done := replay(messages.DeadLetterSelection{Sequences: []uint64{bigDL.Sequence}})
	if done.Done != 0 || done.Failed != 1 || done.Results[0].Code != messages.CodeBadRequest || !strings.Contains(done.Results[0].Error, "too large") {
		t.Fatalf("replay before the fix: %+v", done)
	}
	left(bigDL.Sequence, poisonDL.Sequence)

	// Fixed, but Kafka is down: it fails as unavailable and stays.
	setTopicMaxMessageBytes(t, e, 1_000_000)
	e.kafka.Stop()
	done = replay(messages.DeadLetterSelection{Sequences: []uint64{bigDL.Sequence}})
	if done.Done != 0 || done.Failed != 1 || done.Results[0].Code != messages.CodeUnavailable {
		t.Fatalf("replay while kafka is down: %+v", done)
	}
	left(bigDL.Sequence, poisonDL.Sequence)
	if err := e.kafka.Start(); err != nil {
		t.Fatal(err)
	}

	// Kafka back (its breaker may still be open a moment): replayed.
	testenv.Eventually(t, "the replay taken by kafka", func() bool {
		done = replay(messages.DeadLetterSelection{Sequences: []uint64{bigDL.Sequence, 999}})
		return done.Done == 1
	})
	if done.Failed != 1 || done.Results[0].Code != messages.CodeNotFound || done.Results[0].Sequence != 999 ||
		done.Results[1].Status != messages.DeadLetterReplayed || done.Results[1].EventID != big.EventID {
		t.Fatalf("replay: %+v", done)
	}
	recs, _ := kafkaEvents(t, e, 3)
	var found bool
	for _, r := range recs {
		if testenv.KafkaHeader(r, messages.KafkaHeaderEventID) != big.EventID {
			continue
		}
		found = true
		if got := testenv.KafkaHeader(r, messages.KafkaHeaderCEID); got != big.EventID {
			t.Errorf("replayed record's ce_id %q, want %q", got, big.EventID)
		}
		if got := testenv.KafkaHeader(r, messages.KafkaHeaderSequence); got != "2" {
			t.Errorf("replayed record's nats-sequence %q, want its original 2", got)
		}
		if string(r.Key) != big.SensorID || string(r.Value) != string(want) {
			t.Errorf("replayed record: key %q, value of %d bytes", r.Key, len(r.Value))
		}
	}
	if !found {
		t.Fatal("the replayed event is not in kafka")
	}
	left(poisonDL.Sequence)

	// The poison event still cannot be relayed: replay --all leaves it.
	done = replay(messages.DeadLetterSelection{All: true})
	if done.Done != 0 || done.Failed != 1 || done.Results[0].Code != messages.CodeBadRequest || done.Next != 0 {
		t.Fatalf("replay of the poison event: %+v", done)
	}
	left(poisonDL.Sequence)

	purged, err := b.PurgeDeadLetters(testCtx(t), messages.DeadLetterSelection{Sequences: []uint64{999}})
	if err != nil || purged.Done != 0 || purged.Results[0].Code != messages.CodeNotFound {
		t.Fatalf("purge 999: %+v %v", purged, err)
	}
	left(poisonDL.Sequence)
	purged, err = b.PurgeDeadLetters(testCtx(t), messages.DeadLetterSelection{All: true, Reason: messages.HeaderSensorID})
	if err != nil || purged.Done != 1 || purged.Results[0].Status != messages.DeadLetterPurged {
		t.Fatalf("purge all: %+v %v", purged, err)
	}
	left()
}

// An event the sensor role stored in an atomic batch carries the batch's
// headers (Nats-Batch-Id, -Sequence, -Commit) as stored. Dead-lettered,
// it reaches SENSOR_EVENTS_DLQ: the copy leaves those headers out, which
// would make its publish a batch the dead-letter stream refuses.
func TestDeadLetterOfAtomicBatchEvent(t *testing.T) {
	e := newEnv(t)
	b := e.start(t, e.config())

	poison := events(1, 1)[0]
	msg := eventMsg(t, e.subj, poison)
	msg.Header.Del(messages.HeaderSensorID) // dead-lettered on arrival
	msg.Header.Set("Nats-Batch-Id", "batch-1")
	msg.Header.Set("Nats-Batch-Sequence", "1")
	msg.Header.Set("Nats-Batch-Commit", "1")
	resp, err := e.pub.RequestMsg(msg, testenv.Wait(t))
	if err != nil {
		t.Fatalf("commit the batch: %v", err)
	}
	var ack struct {
		Batch string          `json:"batch"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil || ack.Batch != "batch-1" || ack.Error != nil {
		t.Fatalf("commit answer %s (%v), want the batch acknowledged", resp.Data, err)
	}
	testenv.EventuallyState(t, "the event dead-lettered", func() (bool, string) {
		s := stats(t, b)
		return s.DeadLettered == 1 && s.Queued == 0, fmt.Sprintf("%+v", s)
	})
	page, err := b.ListDeadLetters(testCtx(t), messages.ListDeadLetters{})
	if err != nil || len(page.DeadLetters) != 1 || page.DeadLetters[0].EventID != poison.EventID {
		t.Fatalf("dead letters: %+v %v", page, err)
	}
}

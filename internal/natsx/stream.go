package natsx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/messages"
)

// DefaultDuplicateWindow is StreamConfig.DuplicateWindow's default,
// JetStream's own.
const DefaultDuplicateWindow = 2 * time.Minute

// StreamConfig sizes the event stream and its dead-letter stream. The sensor
// role (which publishes) and the bridge (which consumes) both ensure the
// stream, so they must be given the same values: the last one to start
// wins, since ensuring updates a stream whose config differs.
type StreamConfig struct {
	// Replicas is the JetStream replication factor (default 1; 3 on a
	// NATS cluster, so that one lost server loses no event).
	Replicas int
	// MaxBytes bounds the stream on disk (default 1 GiB). A full stream
	// refuses new events (DiscardNew): the publisher gets an error and keeps
	// the event in its outbox, instead of the oldest unrelayed events being
	// deleted without a trace.
	MaxBytes int64
	// MaxAge, when set, expires events older than this even if they were
	// never relayed. Zero (the default) keeps them until acknowledged;
	// setting it trades the no-loss guarantee for bounded disk use.
	MaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id to drop
	// a republished event (default 2m). It must cover the outbox relay's
	// longest retry of one event.
	DuplicateWindow time.Duration
	// NoAtomicPublish leaves the event stream without atomic batch
	// publish (allow_atomic), as on a server before 2.12: the outbox relay
	// then publishes in waves (one JetStream round trip per event of a
	// busy sensor). Tests of that path set it.
	NoAtomicPublish bool
}

// DefaultStreamMaxBytes is the default size bound of the event stream.
const DefaultStreamMaxBytes = 1 << 30

func (c *StreamConfig) setDefaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultStreamMaxBytes
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
}

// EnsureEventStream creates the stream SENSOR_EVENTS on subj.Events(), or
// updates it to cfg, and returns it. It is idempotent, so every role that
// needs the stream calls it at start.
//
// The stream is a work queue: an event is deleted once the bridge's durable
// consumer acknowledges it (that is, once Kafka has it), so MaxBytes bounds
// the backlog in front of Kafka and never the history. File storage keeps
// the backlog across a NATS restart; DiscardNew turns a full buffer into an
// error for the publisher rather than a silent loss.
//
// The stream allows atomic batch publish where the connected server has it
// (2.12 or later) and cfg does not opt out: the outbox relay stores a whole
// batch all or nothing. A server that does not know the setting returns the
// stream without it, and AtomicPublish(stream) says so. It is asked only of
// servers that have it, so that ensuring against an older one does not
// update the stream every time for a setting that never sticks.
func EnsureEventStream(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, cfg StreamConfig) (jetstream.Stream, error) {
	cfg.setDefaults()
	s, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        messages.StreamEvents,
		Description: "completed-test events waiting to be relayed to Kafka",
		Subjects:    []string{subj.Events()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     -1,
		MaxAge:      cfg.MaxAge,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,

		AllowAtomicPublish: !cfg.NoAtomicPublish && serverAtLeast(js.Conn(), 2, 12),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", messages.StreamEvents, err)
	}
	return s, nil
}

// EnsureDeadLetterStream creates or updates the stream SENSOR_EVENTS_DLQ on
// subj.DeadLetter(). Dead letters are kept (limits retention) until
// an operator looks at them; a full dead-letter stream refuses more
// (DiscardNew), which leaves the poison event pending in SENSOR_EVENTS
// rather than losing it.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, cfg StreamConfig) (jetstream.Stream, error) {
	cfg.setDefaults()
	s, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        messages.StreamDeadLetter,
		Description: "events the bridge could not relay to Kafka, with the reason",
		Subjects:    []string{subj.DeadLetter()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     -1,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", messages.StreamDeadLetter, err)
	}
	return s, nil
}

// ensureStream creates the stream, or updates it only when a setting we own
// differs. Every sensor and bridge process calls it at start and after
// reconnecting; an update that changes nothing still takes the stream's
// lock on the server and (nats-server v2.15.2) races with a consumer being
// created at the same moment, so the common case must not update.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, want.Name)
	if err == nil {
		if sameStreamConfig(s.CachedInfo().Config, want) {
			return s, nil
		}
		return js.UpdateStream(ctx, want)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	s, err = js.CreateStream(ctx, want)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, want.Name) // another process created it first
	}
	return s, err
}

func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		have.Discard == want.Discard &&
		have.MaxBytes == want.MaxBytes &&
		have.MaxMsgs == want.MaxMsgs &&
		have.MaxAge == want.MaxAge &&
		have.Replicas == want.Replicas &&
		have.Duplicates == want.Duplicates &&
		have.AllowAtomicPublish == want.AllowAtomicPublish
}

// AtomicPublish says whether s takes atomic batch publishes, as the server
// last described it: the flag comes back set only from a server that
// supports it (2.12 or later) on a stream configured with it.
func AtomicPublish(s jetstream.Stream) bool {
	info := s.CachedInfo()
	return info != nil && info.Config.AllowAtomicPublish
}

// serverAtLeast says whether the server nc is connected to is at least
// major.minor. An unknown version says no: the stream then goes without
// what needs the newer server.
func serverAtLeast(nc *nats.Conn, major, minor int) bool {
	return nc != nil && versionAtLeast(nc.ConnectedServerVersion(), major, minor)
}

// versionAtLeast says whether the server version v ("2.15.2",
// "v2.12.0-rc.1") is at least major.minor.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	mnr, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || maj == major && mnr >= minor
}

// EventHeaders are what an event carries in its NATS headers so that the
// bridge relays it without reading its payload (the event type is the
// subject's last token).
type EventHeaders struct {
	// EventID is the Nats-Msg-Id (JetStream's dedup) and the CloudEvents id.
	EventID string
	// SensorID keys the Kafka record.
	SensorID string
	// TestID is the CloudEvents subject.
	TestID string
	// Time is when the test completed: the CloudEvents time.
	Time time.Time
	// Traceparent names the span that published the event, while the
	// sensor role traces ("" leaves the header out).
	Traceparent string
}

// EventMsg is an event as it goes into SENSOR_EVENTS: the payload on its
// event subject (whose last token is the event type), with h in its
// headers; an empty field of h is left out (the bridge dead-letters an
// event without what it needs, with the reason). The outbox relay and the
// tests that stand in for it build events here.
func EventMsg(subject string, h EventHeaders, payload []byte) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Data = payload
	msg.Header.Set(messages.HeaderMsgID, h.EventID)
	if h.SensorID != "" {
		msg.Header.Set(messages.HeaderSensorID, h.SensorID)
	}
	if h.TestID != "" {
		msg.Header.Set(messages.HeaderTestID, h.TestID)
	}
	if !h.Time.IsZero() {
		msg.Header.Set(messages.HeaderEventTime, h.Time.UTC().Format(time.RFC3339Nano))
	}
	if h.Traceparent != "" {
		msg.Header.Set(messages.HeaderTraceparent, h.Traceparent)
	}
	return msg
}

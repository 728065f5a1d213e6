package bench

import (
	"log/slog"
	"testing"
	"time"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// --nats-url with TLS: the bench follows the events of a server that
// requires TLS, and refuses at once when it cannot verify the server.
func TestFollowEventsOverTLS(t *testing.T) {
	pki := testenv.Certs(t)
	srv := testenv.NATSWithTLS(t, natsx.EmbeddedTLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile})
	files := natsx.TLSFiles{CAFile: pki.CAFile}
	subj := messages.DefaultSubjects()

	if stop, err := followEvents(srv.URL(), natsx.TLSFiles{}, subj, newTracker()); err == nil {
		stop()
		t.Fatal("followed the events of a server whose certificate it cannot verify")
	}

	tr := newTracker()
	tr.accepted("t-1", time.Now())
	stop, err := followEvents(srv.URL(), files, subj, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pub, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), TLS: files, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx := testenv.Deadline(t)
	if err := natsx.WaitConnected(ctx, pub); err != nil {
		t.Fatal(err)
	}
	ev := messages.TestCompleted{Schema: 1, EventID: "e-1", Type: messages.EventTypeCompleted, TestID: "t-1",
		SensorType: "co2", SensorID: "s", Owner: "admin", Status: messages.StatusCompleted}
	data, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(subj.Event(ev.SensorType, ev.Kind()), data); err != nil {
		t.Fatal(err)
	}
	if !tr.wait(ctx) {
		t.Fatal("the event published over TLS never reached the bench")
	}
}

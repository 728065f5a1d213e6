package bench

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/auth"
	"sensorhub/actors/supervise"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/store/sqlite"
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
	// The bench follows the events as an admin person, admitted by the
	// auth role's callout: the real role, on a store with that admin.
	startAuth(t, srv, files)

	if stop, err := followEvents(srv.URL(), natsx.TLSFiles{}, "admin", benchPassword, subj, newTracker()); err == nil {
		stop()
		t.Fatal("followed the events of a server whose certificate it cannot verify")
	}

	tr := newTracker()
	tr.accepted("t-1", time.Now())
	stop, err := followEvents(srv.URL(), files, "admin", benchPassword, subj, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// The sensor role publishes events.
	pub, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Credentials: srv.Creds(messages.RoleSensor), TLS: files, Logger: slog.New(slog.DiscardHandler)})
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

const benchPassword = "bench-admin-password"

// startAuth runs the auth role, with the callout, on srv until the test
// ends; the store holds the admin with benchPassword.
func startAuth(t *testing.T, srv *testenv.NATSServer, files natsx.TLSFiles) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "auth.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertUser(t.Context(), store.User{Username: "admin", PasswordHash: hash, Roles: []string{messages.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Credentials: srv.Creds(messages.RoleAuth), TLS: files, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsx.WaitConnected(testenv.Deadline(t), nc); err != nil {
		t.Fatal(err)
	}
	svc, err := auth.Start(t.Context(), nc, supervise.NewSystem(slog.New(slog.DiscardHandler)), auth.Config{
		Subjects: messages.DefaultSubjects(), Store: st, KeyFile: filepath.Join(t.TempDir(), "jwt.pem"),
		Callout: &auth.CalloutConfig{Issuer: srv.Identities.Issuer, XKey: srv.Identities.XKey},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(5 * time.Second) })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

package natsauth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsauth"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestLoadOrCreateKeepsKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ids, created, err := natsauth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != len(natsauth.Roles)+2 {
		t.Fatalf("created %v, want one file per role plus issuer and xkey", created)
	}
	for _, name := range created {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	again, created, err := natsauth.LoadOrCreate(dir)
	if err != nil || len(created) != 0 {
		t.Fatalf("second load created %v (err %v), want nothing", created, err)
	}
	if again.Public().Issuer != ids.Public().Issuer || again.Public().Roles["sensor"] != ids.Public().Roles["sensor"] {
		t.Fatal("keys changed on the second load")
	}
	pub := ids.Public()
	if !strings.HasPrefix(pub.Issuer, "A") || !strings.HasPrefix(pub.XKey, "X") || !strings.HasPrefix(pub.Roles["auth"], "U") {
		t.Fatalf("unexpected key kinds: %+v", pub)
	}
}

func TestPermissionListsAreNeverEmpty(t *testing.T) {
	subj := messages.DefaultSubjects()
	for _, role := range natsauth.Roles {
		p := natsauth.RolePermissions(subj, role)
		if len(p.Publish) == 0 || len(p.Subscribe) == 0 {
			t.Errorf("%s: %+v: an empty list would be read as no restriction", role, p)
		}
		for _, s := range append(p.Publish, p.Subscribe...) {
			if s == ">" || s == "_INBOX.>" || strings.HasPrefix(s, "$JS.API.STREAM.DELETE") || strings.HasPrefix(s, "$JS.API.STREAM.PURGE") {
				t.Errorf("%s may use %q", role, s)
			}
		}
	}
	if p := natsauth.RolePermissions(subj, "stranger"); len(p.Publish)+len(p.Subscribe) != 0 || p.AllowResponses {
		t.Fatalf("unknown role got %+v", p)
	}
	person := natsauth.PersonPermissions(subj, "alice", []string{"user"})
	for _, s := range person.Publish {
		if strings.HasPrefix(s, subj.Prefix()+".events") || strings.Contains(s, "*") && !strings.HasPrefix(s, "$JS.API") {
			t.Errorf("person may publish %q (reaches the event stream?)", s)
		}
	}
	if len(person.Subscribe) != 1 || person.Subscribe[0] != "_INBOX_alice.>" {
		t.Fatalf("person subscribe = %v", person.Subscribe)
	}
}

// TestRolesConnectAndAreConfined runs the rendered configuration in a real
// embedded server: each role connects with its nkey; a wrong key, no
// credentials and a plain password are refused; a role cannot subscribe
// outside its table (the effect is checked: nothing arrives).
func TestRolesConnectAndAreConfined(t *testing.T) {
	srv := testenv.NATS(t)
	subj := messages.DefaultSubjects()
	edge := srv.Conn(t, messages.RoleEdge)
	sensor := srv.Conn(t, messages.RoleSensor)

	if _, err := nats.Connect(srv.URL(), nats.Timeout(5*time.Second)); err == nil {
		t.Fatal("anonymous connection admitted")
	}
	if _, err := nats.Connect(srv.URL(), nats.UserInfo("admin", "admin123"), nats.Timeout(5*time.Second)); err == nil {
		t.Fatal("password connection admitted with no callout running")
	}
	otherDir := t.TempDir()
	if _, _, err := natsauth.LoadOrCreate(otherDir); err != nil {
		t.Fatal(err)
	}
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(otherDir, natsauth.RoleFile("sensor")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nats.Connect(srv.URL(), opt, nats.Timeout(5*time.Second)); err == nil {
		t.Fatal("a stranger's nkey was admitted")
	}

	// The edge may not subscribe to the sensor's submissions: nothing it
	// publishes there reaches the edge's own subscription.
	denied := make(chan error, 4)
	edge.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err })
	spy, err := edge.SubscribeSync(subj.SensorSubmit())
	if err != nil {
		t.Fatal(err)
	}
	got, err := sensor.SubscribeSync(subj.SensorSubmit())
	if err != nil {
		t.Fatal(err)
	}
	if err := sensor.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := edge.Publish(subj.SensorSubmit(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := got.NextMsg(testenv.Wait(t)); err != nil {
		t.Fatalf("the sensor role did not get the edge's submission: %v", err)
	}
	select {
	case err := <-denied:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("async error %v, want a permissions violation", err)
		}
	case <-t.Context().Done():
		t.Fatal("no permissions violation reported for the edge's subscription")
	}
	if m, err := spy.NextMsg(10 * time.Millisecond); err == nil {
		t.Fatalf("the edge read a submission: %q", m.Data)
	}
}

// The edge finds the roles' instances by their micro stats (the
// dashboard) and may ask nothing else of $SRV: its PING and INFO never
// reach a service, its STATS do. The denied ones go first, so the first
// message to arrive tells.
func TestEdgeMayAskOnlyTheServicesStats(t *testing.T) {
	srv := testenv.NATS(t)
	subj := messages.DefaultSubjects()
	edge := srv.Conn(t, messages.RoleEdge)
	sensor := srv.Conn(t, messages.RoleSensor)
	got, err := sensor.SubscribeSync("$SRV.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sensor.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"$SRV.PING", "$SRV.INFO", "$SRV.INFO." + subj.ServiceName(messages.RoleSensor), "$SRV.STATS"} {
		if err := edge.Publish(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range messages.Roles {
		if err := edge.Publish(subj.ServiceStats(role), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range messages.Roles {
		m, err := got.NextMsg(testenv.Wait(t))
		if err != nil {
			t.Fatalf("the edge's stats request did not arrive: %v", err)
		}
		if m.Subject != subj.ServiceStats(role) {
			t.Fatalf("arrived %q, want %q (the edge may ask only the services' stats)", m.Subject, subj.ServiceStats(role))
		}
	}
}

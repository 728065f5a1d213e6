package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// The attack table runs against a whole running system: every role on its
// own identity, a person "alice" (role user), the admin "admin", and a
// user "target" for the brute force. Each attack checks its effect
// (nothing leaked, nothing changed), never an error text.

// target is a running system to attack.
type target struct {
	natsURL  string
	httpBase string
	kafka    string
	adminPW  string
	// sensor is the sensor role's own connection: what a role may see, to
	// check what reached the stream and the key bucket.
	sensor *nats.Conn
}

const alicePW = "alice-password-1"

func TestAttacksOnDev(t *testing.T) {
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	addrs := runDev(t, DevConfig{DataDir: dir})
	addUsers(t, "sqlite:"+filepath.Join(dir, "sensorhub.db"))
	keys := DevKeyDir(dir)
	runAttacks(t, target{
		natsURL: addrs.NATS, httpBase: "http://" + addrs.HTTP, kafka: addrs.Kafka, adminPW: DefaultPassword,
		sensor: roleConn(t, addrs.NATS, filepath.Join(keys, natsauth.RoleFile(messages.RoleSensor)), messages.RoleSensor),
	})
}

// TestAttacksOnGeneratedConfig runs the table against the configuration
// `sensorhub nats-config` writes, in a real nats-server binary when one of
// 2.10 or later is named by SENSORHUB_NATS_SERVER (CI installs it), else in
// the embedded server reading the same file; the roles run as their own
// role processes would, each with its generated credential.
func TestAttacksOnGeneratedConfig(t *testing.T) {
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	port := freePort(t)
	var out bytes.Buffer
	if err := WriteNATSConfig(NATSConfigConfig{
		Out: dir, Listen: fmt.Sprintf("127.0.0.1:%d", port), StoreDir: filepath.Join(dir, "js"), SyncAlways: false,
	}, &out); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, ServerConfigFile)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	startNATSServer(t, conf, natsURL)

	db := "sqlite:" + filepath.Join(dir, "sensorhub.db")
	addUsers(t, db)
	kafka := testenv.Kafka(t, messages.DefaultKafkaTopic)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	creds := func(role string) Common {
		return Common{NATSURL: natsURL, SubjectPrefix: messages.DefaultPrefix,
			NATSCreds: natsx.Credentials{NkeyFile: filepath.Join(dir, natsauth.RoleFile(role))}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	runs := []func() error{
		func() error {
			return RunAuth(ctx, AuthConfig{Common: creds(messages.RoleAuth), DatabaseURL: db, KeyFile: filepath.Join(dir, "jwt.pem"),
				CalloutIssuerFile: filepath.Join(dir, natsauth.IssuerFile), CalloutXKeyFile: filepath.Join(dir, natsauth.XKeyFile),
				AllowDefaultPassword: true}, discardLogger())
		},
		func() error {
			return RunSensor(ctx, SensorConfig{Common: creds(messages.RoleSensor), DatabaseURL: db}, discardLogger())
		},
		func() error {
			return RunBridge(ctx, BridgeConfig{Common: creds(messages.RoleBridge), KafkaBrokers: kafka.Addr(), KafkaTopic: messages.DefaultKafkaTopic}, discardLogger())
		},
		func() error {
			return RunEdge(ctx, EdgeConfig{Common: creds(messages.RoleEdge), HTTP: httpAddr}, discardLogger())
		},
	}
	runRoles(t, cancel, runs...)
	base := "http://" + httpAddr
	waitEdgeHealthy(t, base)
	runAttacks(t, target{natsURL: natsURL, httpBase: base, kafka: kafka.Addr(), adminPW: DefaultPassword,
		sensor: roleConn(t, natsURL, filepath.Join(dir, natsauth.RoleFile(messages.RoleSensor)), messages.RoleSensor)})
}

// startNATSServer runs the server on conf until the test ends.
func startNATSServer(t *testing.T, conf, natsURL string) {
	t.Helper()
	if bin := os.Getenv("SENSORHUB_NATS_SERVER"); bin != "" {
		cmd := exec.Command(bin, "-c", conf)
		var logs testenv.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("nats-server log:\n%s", logs.String())
			}
		})
		testenv.Eventually(t, "the nats-server binary to listen", func() bool {
			u, _ := url.Parse(natsURL)
			c, err := net.DialTimeout("tcp", u.Host, time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err == nil
		})
		return
	}
	if os.Getenv("SENSORHUB_REQUIRE_TOOLS") == "1" {
		t.Fatal("SENSORHUB_NATS_SERVER names no nats-server binary (SENSORHUB_REQUIRE_TOOLS=1)")
	}
	t.Log("SENSORHUB_NATS_SERVER is not set: running the generated file in the embedded server")
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded server not ready")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// addUsers creates alice (user) and target (user) next to the admin.
func addUsers(t *testing.T, db string) {
	t.Helper()
	st, err := OpenStore(t.Context(), db, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// bcrypt's lowest cost: under the race detector the default cost takes
	// about a second per check, and each connect through the callout is one.
	for _, u := range []struct{ name, pw, role string }{
		{"alice", alicePW, "user"}, {"target", alicePW, "user"}, {"admin", DefaultPassword, messages.RoleAdmin},
	} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpsertUser(t.Context(), store.User{Username: u.name, PasswordHash: hash, Roles: []string{u.role}}); err != nil {
			t.Fatal(err)
		}
	}
}

func roleConn(t *testing.T, natsURL, seed, role string) *nats.Conn {
	t.Helper()
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: natsURL, Name: "test-" + role,
		Credentials: natsx.Credentials{NkeyFile: seed, InboxPrefix: messages.InboxPrefix(role)}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsx.WaitConnected(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	return nc
}

// person connects as user with password (no reconnects, one try).
func person(t *testing.T, tg target, user, password string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(tg.natsURL, nats.UserInfo(user, password), nats.CustomInboxPrefix(messages.InboxPrefix(user)),
		nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitCtx is a context with the test's own deadline (natsx.Request would
// otherwise apply its short default).
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	t.Cleanup(cancel)
	return ctx
}

func runAttacks(t *testing.T, tg target) {
	subj := messages.DefaultSubjects()
	alice := person(t, tg, "alice", alicePW)
	admin := person(t, tg, "admin", tg.adminPW)

	// sync makes the server route everything alice and the others sent so
	// far: a request answered through the same server comes back after it.
	sync := func(nc *nats.Conn) {
		t.Helper()
		if _, err := natsx.Request(waitCtx(t), nc, subj.AuthJWKS(), nil, nil, &messages.JWKS{}); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	// spy subscribes alice to subject; nothing may ever arrive there.
	spy := func(nc *nats.Conn, subject string) *nats.Subscription {
		t.Helper()
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		return sub
	}
	nothing := func(sub *nats.Subscription, what string) {
		t.Helper()
		if m, err := sub.NextMsg(time.Millisecond); err == nil {
			t.Errorf("%s: a stranger read %s: %q", what, m.Subject, m.Data)
		}
	}
	login := func(nc *nats.Conn) string {
		t.Helper()
		var tok messages.TokenReply
		if _, err := natsx.Request(waitCtx(t), nc, subj.AuthToken(), messages.TokenRequest{Username: "admin", Password: tg.adminPW}, nil, &tok); err != nil {
			t.Fatalf("admin login over NATS: %v", err)
		}
		return tok.AccessToken
	}

	t.Run("anonymous connect refused", func(t *testing.T) {
		if nc, err := nats.Connect(tg.natsURL, nats.Timeout(5*time.Second), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("an anonymous client was admitted")
		}
	})

	t.Run("a person named like a role is refused", func(t *testing.T) {
		if nc, err := nats.Connect(tg.natsURL, nats.UserInfo("sensor", "whatever-pw"), nats.Timeout(5*time.Second), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("admitted")
		}
	})

	t.Run("no password or token leaks to a spy", func(t *testing.T) {
		subs := []*nats.Subscription{
			spy(alice, subj.Group(messages.RoleAuth)+".>"), spy(alice, "_INBOX.>"),
			spy(alice, messages.InboxPrefix("admin")+".>"), spy(alice, messages.InboxPrefix(messages.RoleEdge)+".>"),
			spy(alice, ">"),
		}
		sync(alice)
		login(admin)
		if _, err := http.Post(tg.httpBase+"/auth/token", "application/x-www-form-urlencoded", strings.NewReader("username=admin&password="+tg.adminPW)); err != nil {
			t.Fatal(err)
		}
		sync(admin)
		sync(alice)
		for _, s := range subs {
			nothing(s, "login traffic")
		}
	})

	t.Run("a forged validate answer changes nothing", func(t *testing.T) {
		forged, _ := json.Marshal(messages.ValidateReply{Valid: true, Subject: "admin", Roles: []string{messages.RoleAdmin}, AuthMode: messages.AuthModeOnline, ExpiresAt: time.Now().Add(time.Hour).Unix()})
		sub, err := alice.Subscribe(subj.AuthValidate(), func(m *nats.Msg) { _ = m.Respond(forged) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		sync(alice)
		for i := range 20 {
			req, _ := http.NewRequest(http.MethodPost, tg.httpBase+"/test/sensor/temperature", nil)
			req.Header.Set("Authorization", "Bearer garbage-"+fmt.Sprint(i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a garbage token got %d while alice answered validate", resp.StatusCode)
			}
		}
		// Nor over NATS, nor for reading other people's tests.
		var rec messages.TestRecord
		_, err = natsx.Request(waitCtx(t), alice, subj.SensorResult(), messages.GetResult{TestID: "0190a0a0-0000-7000-8000-000000000000"}, nats.Header{"Authorization": {"Bearer garbage"}}, &rec)
		if messages.CodeOf(err) != messages.CodeUnauthorized {
			t.Fatalf("result with a garbage token while alice answered validate: %v", err)
		}
	})

	t.Run("the key bucket cannot be changed", func(t *testing.T) {
		js, err := jetstream.New(tg.sensor)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(waitCtx(t), messages.BucketKeys)
		if err != nil {
			t.Fatal(err)
		}
		before, err := kv.Get(waitCtx(t), messages.KeyJWKS)
		if err != nil {
			t.Fatal(err)
		}
		for _, nc := range []*nats.Conn{alice, admin} {
			_ = nc.Publish("$KV."+messages.BucketKeys+"."+messages.KeyJWKS, []byte(`{"keys":[]}`))
			_ = nc.Publish("$KV."+messages.BucketKeys+".evil", []byte(`x`))
			pjs, _ := jetstream.New(nc)
			short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			_, _ = pjs.CreateKeyValue(short, jetstream.KeyValueConfig{Bucket: "evil"})
			_ = pjs.DeleteKeyValue(short, messages.BucketKeys)
			cancel()
			sync(nc)
		}
		after, err := kv.Get(waitCtx(t), messages.KeyJWKS)
		if err != nil {
			t.Fatalf("the JWKS is gone: %v", err)
		}
		if after.Revision() != before.Revision() || !bytes.Equal(after.Value(), before.Value()) {
			t.Fatalf("the JWKS changed: revision %d -> %d", before.Revision(), after.Revision())
		}
		if _, err := kv.Get(waitCtx(t), "evil"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("a stranger's key is in the bucket: %v", err)
		}
		// The admin may read stream info: the bucket "evil" is not there.
		ajs, _ := jetstream.New(admin)
		if _, err := ajs.Stream(waitCtx(t), "KV_evil"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("a stranger's bucket: %v, want stream not found", err)
		}
	})

	t.Run("no event can be injected, read, pulled, purged or deleted", func(t *testing.T) {
		spyEvents := spy(alice, subj.Events())
		watch := spy(admin, subj.Events())
		sync(alice)
		sync(admin)
		fake := messages.TestCompleted{EventID: "0190a0a0-0000-7000-8000-00000000f4ce", TestID: "0190a0a0-0000-7000-8000-00000000f4ce", SensorType: "temperature", SensorID: "fake", Owner: "admin"}
		body, _ := json.Marshal(fake)
		for _, nc := range []*nats.Conn{alice, admin} {
			for _, s := range []string{subj.Event("temperature", messages.EventKindCompleted), subj.Prefix() + ".events.health"} {
				_ = nc.PublishMsg(&nats.Msg{Subject: s, Data: body, Header: nats.Header{jetstream.MsgIDHeader: {fake.EventID}}})
			}
			for _, api := range []string{
				"$JS.API.STREAM.PURGE." + messages.StreamEvents, "$JS.API.STREAM.DELETE." + messages.StreamEvents,
				"$JS.API.CONSUMER.DELETE." + messages.StreamEvents + "." + messages.ConsumerBridge,
				"$JS.API.CONSUMER.MSG.NEXT." + messages.StreamEvents + "." + messages.ConsumerBridge,
				"$JS.API.CONSUMER.CREATE." + messages.StreamEvents + ".thief",
			} {
				_ = nc.PublishRequest(api, nc.NewRespInbox(), []byte(`{"batch":100}`))
			}
			sync(nc)
		}
		// A real submission afterwards: its event reaches Kafka, the fake
		// never does, and only the admin saw the real one on NATS.
		tok := login(admin)
		var acc messages.TestAccepted
		if _, err := natsx.Request(waitCtx(t), admin, subj.SensorSubmit(), messages.SubmitTest{SensorType: "co2"}, nats.Header{"Authorization": {"Bearer " + tok}}, &acc); err != nil {
			t.Fatal(err)
		}
		var seen map[string]string // event id -> test id
		testenv.Eventually(t, "the real event in Kafka", func() bool {
			seen = kafkaEvents(t, tg.kafka)
			for _, testID := range seen {
				if testID == acc.TestID {
					return true
				}
			}
			return false
		})
		if _, ok := seen[fake.EventID]; ok {
			t.Fatal("the injected event reached Kafka")
		}
		if _, err := watch.NextMsg(testenv.Wait(t)); err != nil {
			t.Fatalf("the admin did not see the real event: %v", err)
		}
		sync(alice)
		nothing(spyEvents, "events (alice is no admin)")
		// The stream and the bridge's consumer are still there, and the
		// consumer never redelivered (nobody pulled its messages away).
		js, _ := jetstream.New(admin)
		st, err := js.Stream(waitCtx(t), messages.StreamEvents)
		if err != nil {
			t.Fatalf("the stream is gone: %v", err)
		}
		ci, err := st.Consumer(waitCtx(t), messages.ConsumerBridge)
		if err != nil {
			t.Fatalf("the bridge's consumer is gone: %v", err)
		}
		if info := ci.CachedInfo(); info.NumRedelivered != 0 {
			t.Fatalf("the bridge's consumer redelivered %d messages: someone pulled them", info.NumRedelivered)
		}
		if _, err := st.Consumer(waitCtx(t), "thief"); err == nil {
			t.Fatal("a stranger created a consumer")
		}
	})

	t.Run("a person cannot use the edge's login subject or chaos", func(t *testing.T) {
		short, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		_, err := natsx.Request(short, alice, subj.AuthTokenForwarded(), messages.TokenRequest{Username: "admin", Password: "x", ClientAddr: "198.51.100.1"}, nil, nil)
		if err == nil || messages.CodeOf(err) == messages.CodeInvalidCredentials {
			t.Fatalf("alice's forwarded login was answered: %v", err)
		}
		_, err = natsx.Request(short, alice, subj.ChaosPanic(), messages.ChaosPanic{Actor: "auth"}, nil, nil)
		if err == nil {
			t.Fatal("alice's chaos request was answered")
		}
		// Nor the dead letters: the bridge answers an admin there, never
		// alice (her requests are dropped by the server).
		var page messages.DeadLetterPage
		if _, err := natsx.Request(waitCtx(t), admin, subj.DeadLetterList(), messages.ListDeadLetters{}, nil, &page); err != nil {
			t.Fatalf("the admin's dead-letter list: %v", err)
		}
		for _, dl := range []struct {
			subject string
			req     any
		}{
			{subj.DeadLetterList(), messages.ListDeadLetters{}},
			{subj.DeadLetterGet(), messages.GetDeadLetter{Sequence: 1}},
			{subj.DeadLetterReplay(), messages.ReplayDeadLetters{All: true}},
			{subj.DeadLetterPurge(), messages.PurgeDeadLetters{All: true, Confirm: true}},
		} {
			// Each with its own wait: an expired one would prove nothing.
			one, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			_, err := natsx.Request(one, alice, dl.subject, dl.req, nil, nil)
			cancel()
			if !errors.Is(err, natsx.ErrTimeout) {
				t.Fatalf("alice's request on %s: %v, want no answer", dl.subject, err)
			}
		}
		// alice cannot read JetStream's state either (admins may).
		ajs, _ := jetstream.New(alice)
		if _, err := ajs.Stream(short, messages.StreamEvents); err == nil {
			t.Fatal("alice read the stream's info")
		}
		if _, err := alice.Request("$JS.API.STREAM.LEADER.STEPDOWN."+messages.StreamEvents, nil, 500*time.Millisecond); err == nil {
			t.Fatal("alice's stream leader step-down was answered")
		}
	})

	t.Run("micro discovery works for a person", func(t *testing.T) {
		found := map[string]bool{}
		inbox := alice.NewRespInbox()
		sub, err := alice.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := alice.PublishRequest("$SRV.PING", inbox, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(testenv.Wait(t))
		for len(found) < len(messages.Services) && time.Now().Before(deadline) {
			m, err := sub.NextMsg(time.Until(deadline))
			if err != nil {
				break
			}
			var p struct{ Name string }
			_ = json.Unmarshal(m.Data, &p)
			found[p.Name] = true
		}
		for _, r := range messages.Services {
			if !found[subj.ServiceName(r)] {
				t.Errorf("$SRV.PING did not find %s (found %v)", subj.ServiceName(r), found)
			}
		}
	})

	t.Run("forty wrong passwords over NATS are rate limited", func(t *testing.T) {
		for range 40 {
			if nc, err := nats.Connect(tg.natsURL, nats.UserInfo("target", "wrong"), nats.Timeout(5*time.Second), nats.MaxReconnects(0)); err == nil {
				nc.Close()
				t.Fatal("a wrong password was admitted")
			}
		}
		// Limited: now even the right password is refused from this client.
		if nc, err := nats.Connect(tg.natsURL, nats.UserInfo("target", alicePW), nats.Timeout(5*time.Second), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("after 40 wrong passwords the next attempt was checked, not limited")
		}
		// And the same limit over nats req, for another user.
		limited := false
		for range 40 {
			_, err := natsx.Request(waitCtx(t), alice, subj.AuthToken(), messages.TokenRequest{Username: "admin", Password: "wrong"}, nil, nil)
			if messages.CodeOf(err) == messages.CodeRateLimited {
				limited = true
				break
			}
		}
		if !limited {
			t.Fatal("40 wrong passwords over nats req were never rate limited")
		}
	})
}

// kafkaEvents maps the event id of every record in the Kafka topic to
// its test id.
func kafkaEvents(t *testing.T, addr string) map[string]string {
	t.Helper()
	msgs, err := testenv.ReadAllWithin(addr, messages.DefaultKafkaTopic, 0, 2*time.Second)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, m := range msgs {
		var ev struct {
			TestID string `json:"test_id"`
		}
		_ = json.Unmarshal(m.Value, &ev)
		out[testenv.KafkaHeader(m, "event-id")] = ev.TestID
	}
	return out
}

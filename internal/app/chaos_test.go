package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// startChaosDev runs dev with --chaos on its embedded NATS and Kafka, with
// the attack table's users (alice is no admin).
func startChaosDev(t *testing.T) DevAddrs {
	t.Helper()
	dir := t.TempDir()
	addrs := runDev(t, DevConfig{Common: Common{Chaos: true}, DataDir: dir})
	addUsers(t, "sqlite:"+filepath.Join(dir, "sensorhub.db"))
	return addrs
}

// Admin stops and starts dev's embedded Kafka over sensorhub.chaos.control:
// the broker refuses connections while stopped and takes them again after,
// every reply tells the state of every target, and an unknown target or a
// person who is no admin changes nothing.
func TestChaosControlStopsAndStartsKafka(t *testing.T) {
	addrs := startChaosDev(t)
	tg := target{natsURL: addrs.NATS}
	admin := person(t, tg, "admin", DefaultPassword)
	subj := messages.DefaultSubjects().ChaosControl()
	control := func(nc *nats.Conn, target, action string) (messages.ChaosControlReply, error) {
		var r messages.ChaosControlReply
		_, err := natsx.Request(waitCtx(t), nc, subj, messages.ChaosControl{Target: target, Action: action}, nil, &r)
		return r, err
	}
	kafkaUp := func() bool {
		c, err := net.DialTimeout("tcp", addrs.Kafka, 2*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}
	want := func(r messages.ChaosControlReply, err error, state string) {
		t.Helper()
		if err != nil {
			t.Fatalf("chaos control: %v", err)
		}
		if got := r.States[messages.ChaosTargetKafka]; got != state {
			t.Fatalf("kafka %q after %s, want %q (%+v)", got, r.Action, state, r)
		}
	}

	r, err := control(admin, messages.ChaosTargetKafka, messages.ChaosActionStatus)
	want(r, err, messages.ChaosStateRunning)
	if !kafkaUp() {
		t.Fatal("kafka refuses connections before any stop")
	}
	r, err = control(admin, messages.ChaosTargetKafka, messages.ChaosActionStop)
	want(r, err, messages.ChaosStateStopped)
	if kafkaUp() {
		t.Fatal("kafka takes connections after stop")
	}
	r, err = control(admin, messages.ChaosTargetKafka, messages.ChaosActionStop) // twice: still stopped
	want(r, err, messages.ChaosStateStopped)

	// alice may not publish there: her request is never answered, and
	// Kafka stays down.
	alice := person(t, tg, "alice", alicePW)
	short, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := natsx.Request(short, alice, subj, messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: messages.ChaosActionStart}, nil, nil); err == nil {
		t.Fatal("alice's chaos control was answered")
	}
	if kafkaUp() {
		t.Fatal("kafka came back on alice's request")
	}

	_, err = control(admin, "toaster", messages.ChaosActionStop)
	if messages.CodeOf(err) != messages.CodeUnknownActor {
		t.Fatalf("unknown target: %v, want %s", err, messages.CodeUnknownActor)
	}
	_, err = control(admin, messages.ChaosTargetKafka, "explode")
	if messages.CodeOf(err) != messages.CodeBadRequest {
		t.Fatalf("unknown action: %v, want %s", err, messages.CodeBadRequest)
	}

	r, err = control(admin, messages.ChaosTargetKafka, messages.ChaosActionStart)
	want(r, err, messages.ChaosStateRunning)
	if !kafkaUp() {
		t.Fatal("kafka refuses connections after start")
	}
}

// Without --chaos nobody answers the control subject.
func TestChaosControlNeedsTheFlag(t *testing.T) {
	testenv.SkipIfShort(t)
	addrs := runDev(t, DevConfig{})
	admin := person(t, target{natsURL: addrs.NATS}, "admin", DefaultPassword)
	_, err := natsx.Request(waitCtx(t), admin, messages.DefaultSubjects().ChaosControl(),
		messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: messages.ChaosActionStop}, nil, nil)
	if !errors.Is(err, natsx.ErrNoResponders) {
		t.Fatalf("chaos control without --chaos: %v, want no responders", err)
	}
}

// Admin stops and starts each role of dev: a stopped role is gone from the
// bus as a killed process would be (its health subject and micro service
// answer nobody) while the others serve on, and it comes back in the same
// process with the same identity. Stopping the sensor role while a client
// keeps submitting loses no accepted test: each one ends completed, with
// its event in Kafka, once the role is back. The metrics go on being
// served (the restarted role registers its own).
func TestChaosControlStopsAndStartsRoles(t *testing.T) {
	addrs := startChaosDev(t)
	tg := target{natsURL: addrs.NATS}
	admin := person(t, tg, "admin", DefaultPassword)
	subj := messages.DefaultSubjects()
	control := func(target, action string) messages.ChaosControlReply {
		t.Helper()
		var r messages.ChaosControlReply
		if _, err := natsx.Request(waitCtx(t), admin, subj.ChaosControl(), messages.ChaosControl{Target: target, Action: action}, nil, &r); err != nil {
			t.Fatalf("%s %s: %v", action, target, err)
		}
		return r
	}
	answers := func(role string) error {
		ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
		defer cancel()
		_, err := natsx.Request(ctx, admin, "$SRV.PING.sensorhub-"+role, nil, nil, nil)
		if err == nil {
			_, err = natsx.Request(ctx, admin, subj.Health(role), nil, nil, &messages.HealthReply{})
		}
		return err
	}
	for _, role := range []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge} {
		if err := answers(role); err != nil {
			t.Fatalf("%s before any stop: %v", role, err)
		}
		r := control(role, messages.ChaosActionStop)
		if r.States[role] != messages.ChaosStateStopped {
			t.Fatalf("%s after stop: %+v", role, r.States)
		}
		if err := answers(role); !errors.Is(err, natsx.ErrNoResponders) {
			t.Fatalf("%s stopped still answers: %v", role, err)
		}
		for _, other := range []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge} {
			if other != role {
				if err := answers(other); err != nil {
					t.Errorf("%s with %s stopped: %v", other, role, err)
				}
			}
		}
		if r := control(role, messages.ChaosActionStart); r.States[role] != messages.ChaosStateRunning {
			t.Fatalf("%s after start: %+v", role, r.States)
		}
		if err := answers(role); err != nil {
			t.Fatalf("%s after start: %v", role, err)
		}
	}
	// The restarted roles are whole again: a login and a submission work.
	base := "http://" + addrs.HTTP
	waitEdgeHealthy(t, base)
	tok := devLogin(t, base)

	// The sensor role stopped and started under a steady client.
	type result struct {
		id     string
		status int
	}
	// Four clients, so that tests are in flight when the role stops.
	const clients = 4
	results := make(chan result, 1024)
	stop := make(chan struct{})
	done := make(chan struct{}, clients)
	for range clients {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, status := devSubmit(base, tok)
				select {
				case results <- result{id, status}:
				case <-stop:
					if status == http.StatusAccepted {
						results <- result{id, status} // room: the collector stopped taking
					}
					return
				}
			}
		}()
	}
	var accepted []string
	collect := func(n int) {
		t.Helper()
		for got := 0; got < n; {
			select {
			case r := <-results:
				if r.status == http.StatusAccepted {
					accepted = append(accepted, r.id)
					got++
				}
			case <-time.After(testenv.Wait(t)):
				t.Fatal("no submission accepted")
			}
		}
	}
	collect(10)
	control(messages.RoleSensor, messages.ChaosActionStop)
	control(messages.RoleSensor, messages.ChaosActionStart)
	collect(10)
	close(stop)
	for range clients {
		<-done
	}
	for len(results) > 0 {
		if r := <-results; r.status == http.StatusAccepted {
			accepted = append(accepted, r.id)
		}
	}
	testenv.EventuallyState(t, "every accepted test completed", func() (bool, string) {
		left := 0
		for _, id := range accepted {
			if devStatus(base, tok, id) != messages.StatusCompleted {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d of %d not completed", left, len(accepted))
	})
	msgs, err := testenv.ReadAllWithin(addrs.Kafka, messages.DefaultKafkaTopic, len(accepted), testenv.Wait(t))
	if err != nil {
		t.Fatalf("read Kafka: %v", err)
	}
	inKafka := map[string]bool{}
	for _, m := range msgs {
		if e, err := messages.DecodeEvent(m.Value); err == nil {
			inKafka[e.TestID] = true
		}
	}
	for _, id := range accepted {
		if !inKafka[id] {
			t.Errorf("test %s has no event in Kafka", id)
		}
	}
	// The restarted roles' metrics are served.
	if m := devGet(t, base+"/metrics"); !strings.Contains(m, `role="sensor"`) || !strings.Contains(m, `role="auth"`) {
		t.Errorf("metrics after the restarts lack the restarted roles")
	}
	// A role left stopped: dev still shuts down cleanly (the cleanup
	// checks RunDev's error).
	control(messages.RoleBridge, messages.ChaosActionStop)
}

func devLogin(t *testing.T, base string) string {
	t.Helper()
	resp, err := httpClient.Post(base+"/auth/token", "application/x-www-form-urlencoded", strings.NewReader("username=admin&password="+DefaultPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok messages.TokenReply
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// devSubmit submits one simulated test; "" and the status when refused.
func devSubmit(base, tok string) (string, int) {
	req, _ := http.NewRequest(http.MethodPost, base+"/test/sensor/temperature", nil)
	req.Header.Set(messages.HeaderAuthorization, "Bearer "+tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var acc messages.TestAccepted
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	return acc.TestID, resp.StatusCode
}

func devStatus(base, tok, id string) string {
	req, _ := http.NewRequest(http.MethodGet, base+"/test/"+id, nil)
	req.Header.Set(messages.HeaderAuthorization, "Bearer "+tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var rec messages.TestRecord
	_ = json.NewDecoder(resp.Body).Decode(&rec)
	return rec.Status
}

func devGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The database switch on dev's SQLite (a switch at the store's boundary)
// shows a user what PostgreSQL down does: submissions answer 503
// database_unavailable, /health shows the database down and the breaker
// open; after start the same dev accepts again.
func TestChaosControlCutsTheSQLiteDatabase(t *testing.T) {
	addrs := startChaosDev(t)
	admin := person(t, target{natsURL: addrs.NATS}, "admin", DefaultPassword)
	control := func(action string) {
		t.Helper()
		var r messages.ChaosControlReply
		if _, err := natsx.Request(waitCtx(t), admin, messages.DefaultSubjects().ChaosControl(),
			messages.ChaosControl{Target: messages.ChaosTargetDatabase, Action: action}, nil, &r); err != nil {
			t.Fatalf("%s database: %v", action, err)
		}
	}
	base := "http://" + addrs.HTTP
	waitEdgeHealthy(t, base)
	tok := devLogin(t, base)
	if _, status := devSubmit(base, tok); status != http.StatusAccepted {
		t.Fatalf("submit before the cut: %d", status)
	}
	control(messages.ChaosActionStop)
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodPost, base+"/test/sensor/temperature", nil)
		req.Header.Set(messages.HeaderAuthorization, "Bearer "+tok)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e messages.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || e.Code != messages.CodeDatabaseUnavailable {
			t.Fatalf("submit %d with the database cut: %d %+v, want 503 %s", i+1, resp.StatusCode, e, messages.CodeDatabaseUnavailable)
		}
	}
	testenv.EventuallyState(t, "/health showing the database down and its breaker open", func() (bool, string) {
		var h messages.EdgeHealth
		if err := json.Unmarshal([]byte(devGet(t, base+"/health")), &h); err != nil {
			return false, err.Error()
		}
		db := h.Services[messages.RoleSensor].Dependencies["database"]
		br := h.CircuitBreakers["sensor.database"].State
		return h.Status == messages.HealthDegraded && db.Status == messages.HealthDown && br == messages.BreakerOpen,
			fmt.Sprintf("status %s, database %s, breaker %s", h.Status, db.Status, br)
	})
	control(messages.ChaosActionStart)
	testenv.Eventually(t, "submissions accepted again", func() bool {
		_, status := devSubmit(base, tok)
		return status == http.StatusAccepted
	})
	waitEdgeHealthy(t, base)
}

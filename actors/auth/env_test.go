package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/actortest"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

const wait = 10 * time.Second

// hash is a bcrypt hash at the lowest cost, to keep tests fast.
func hash(t testing.TB, password string) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// flakyStore wraps a real store; while down is set, user reads and pings
// fail with store.ErrUnavailable, as a lost database would.
type flakyStore struct {
	store.Store
	down     atomic.Bool
	getUsers atomic.Int64
}

func (f *flakyStore) GetUser(ctx context.Context, username string) (store.User, error) {
	f.getUsers.Add(1)
	if f.down.Load() {
		return store.User{}, store.ErrUnavailable
	}
	return f.Store.GetUser(ctx, username)
}

func (f *flakyStore) ListUncheckedPasswords(ctx context.Context) ([]store.User, error) {
	if f.down.Load() {
		return nil, store.ErrUnavailable
	}
	return f.Store.ListUncheckedPasswords(ctx)
}

func (f *flakyStore) ListDefaultPasswordUsers(ctx context.Context) ([]string, error) {
	if f.down.Load() {
		return nil, store.ErrUnavailable
	}
	return f.Store.ListDefaultPasswordUsers(ctx)
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return store.ErrUnavailable
	}
	return f.Store.Ping(ctx)
}

type env struct {
	nats *testenv.NATSServer
	nc   *nats.Conn // the auth role's own identity
	// edge and sensor are those roles' identities: the edge logs users in
	// (the forwarded subject) and validates; the sensor role validates
	// and reads the key bucket.
	edge, sensor *nats.Conn
	system       *actor.ActorSystem
	logs         *actortest.LogBuffer
	store        *flakyStore
	subj         messages.Subjects
	cfg          Config
	svc          *Service
}

// newEnv starts embedded NATS, a sqlite store with users alice (user),
// root (admin) and bob (disabled), all with password "secret", and the auth
// role. configure may change the config first.
func newEnv(t *testing.T, configure func(*Config)) *env {
	t.Helper()
	e := &env{nats: testenv.NATS(t), subj: messages.DefaultSubjects()}
	logger, logs := actortest.CaptureLogs(t)
	e.logs = logs
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: e.nats.URL(), Name: t.Name(), Credentials: e.nats.Creds(messages.RoleAuth), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
	e.edge = e.nats.Conn(t, messages.RoleEdge)
	e.sensor = e.nats.Conn(t, messages.RoleSensor)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := natsx.WaitConnected(ctx, nc); err != nil {
		t.Fatal(err)
	}
	st := testenv.SQLite(t)
	e.store = &flakyStore{Store: st}
	for _, u := range []store.User{
		{Username: "alice", PasswordHash: hash(t, "secret"), Roles: []string{"user"}},
		{Username: "root", PasswordHash: hash(t, "secret"), Roles: []string{messages.RoleAdmin}},
		{Username: "bob", PasswordHash: hash(t, "secret"), Roles: []string{"user"}, Disabled: true},
	} {
		if _, err := st.UpsertUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	e.system = actortest.NewSystemWithLogger(t, logger)
	e.cfg = Config{
		Callout:      e.calloutConfig(),
		Subjects:     e.subj,
		Store:        e.store,
		KeyFile:      filepath.Join(t.TempDir(), "keys", "auth.pem"),
		LoginWorkers: 2,
		Logger:       logger,
	}
	if configure != nil {
		configure(&e.cfg)
	}
	e.start(t)
	return e
}

func (e *env) start(t *testing.T) {
	t.Helper()
	svc, err := Start(context.Background(), e.nc, e.system, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The other roles' connections ask the server: it must know the
	// service's subscriptions first (when it is up at all).
	if e.nc.IsConnected() {
		if err := e.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := svc.Stop(wait); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	// The test's users are hashed at bcrypt's lowest cost, and an unknown
	// user is compared at the cost of the last real hash seen (bcrypt's
	// default before any): as after a first real login, the dummy follows
	// the users' cost. Unprimed, an unknown user first in a test costs a
	// default-cost round, which under -race on a busy machine outlasts
	// the server's first PING to a connecting client (2 s), and the
	// client reports "expected PONG, got PING" instead of the refusal.
	svc.dummies.seen(hash(t, "prime"))
	e.svc = svc
}

// request calls subject and decodes the reply into out.
func (e *env) request(t *testing.T, subject string, req, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := natsx.Request(ctx, e.edge, subject, req, nil, out)
	return err
}

// calloutConfig are the callout keys of the test server.
func (e *env) calloutConfig() *CalloutConfig {
	return &CalloutConfig{Issuer: e.nats.Identities.Issuer, XKey: e.nats.Identities.XKey}
}

func (e *env) login(t *testing.T, user, password string) (messages.TokenReply, error) {
	t.Helper()
	var r messages.TokenReply
	err := e.request(t, e.subj.AuthTokenForwarded(), messages.TokenRequest{Username: user, Password: password, ClientAddr: "192.0.2.1"}, &r)
	return r, err
}

func (e *env) mustLogin(t *testing.T, user string) string {
	t.Helper()
	r, err := e.login(t, user, "secret")
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return r.AccessToken
}

// wantCode fails unless err is a *messages.Error with code.
func wantCode(t *testing.T, err error, code messages.Code) *messages.Error {
	t.Helper()
	var e *messages.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%q), want %s", e.Code, e.Message, code)
	}
	return e
}

// person connects to NATS as a person, through the auth callout, with
// that person's own inbox prefix; closed by t.Cleanup.
func (e *env) person(t *testing.T, user, password string) *nats.Conn {
	t.Helper()
	nc, err := e.connectPerson(nats.UserInfo(user, password), nats.CustomInboxPrefix(messages.InboxPrefix(user)))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// connectPerson dials once (no retries): a refusal comes back as an error.
func (e *env) connectPerson(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(e.nats.URL(), append([]nats.Option{nats.Timeout(testenv.AuthTimeout + 5*time.Second), nats.MaxReconnects(0)}, opts...)...)
}

package drills

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// With --chaos, sensorhub.chaos.panic {"actor":"auth"} panics the auth
// role's login actor: the auth process logs one supervision line (actor,
// reason, directive restart, restarts) and the next logins still work.
// This is `nats req sensorhub.chaos.panic '{"actor":"auth"}'` from the
// README, sent with nats.go.
func TestChaosPanicRestartsAuthActor(t *testing.T) {
	c := newCluster(t, clusterOptions{roles: []string{roleAuth, roleEdge}, chaos: true})
	auth := c.proc(roleAuth)
	ops := c.ops()

	// The role answers its health a moment before it subscribes to the
	// chaos subject: "no responders" means not yet.
	var reply messages.ChaosReply
	err := poll(testenv.Wait(c.t), pollInterval, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		_, err := natsx.Request(ctx, ops, c.subj.ChaosPanic(), messages.ChaosPanic{Actor: "auth"}, nil, &reply)
		if errors.Is(err, natsx.ErrNoResponders) {
			return err
		}
		if err != nil {
			t.Fatalf("chaos request: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("chaos request: %v", err)
	}
	if !reply.Panicked || !strings.HasPrefix(reply.Actor, "auth/") {
		t.Fatalf("chaos reply %+v, want an auth actor panicked", reply)
	}

	var line map[string]any
	err = poll(testenv.Wait(c.t), pollInterval, func() error {
		rec, ok := auth.findLog(func(r map[string]any) bool {
			return r["msg"] == "actor supervision" && r["actor"] == reply.Actor
		})
		if !ok {
			return errors.New("no supervision log line for " + reply.Actor)
		}
		line = rec
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, auth.tail(40))
	}
	reason, _ := line["reason"].(string)
	restarts, _ := line["restarts"].(float64)
	if !strings.Contains(reason, "chaos") || line["directive"] != "restart" || restarts < 1 {
		t.Errorf("supervision line %v: want a chaos reason, directive restart, restarts >= 1", line)
	}
	t.Logf("supervision line: actor=%v reason=%q directive=%v restarts=%v level=%v", line["actor"], reason, line["directive"], line["restarts"], line["level"])

	// The next logins work: over NATS (each login actor in turn, so the
	// restarted one serves too) and through the edge.
	for i := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		var tok messages.TokenReply
		_, err := natsx.Request(ctx, ops, c.subj.AuthToken(), messages.TokenRequest{Username: c.username, Password: c.password}, nil, &tok)
		cancel()
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("login %d over NATS after the panic: %v (%+v)", i+1, err, tok)
		}
	}
	if tok := c.token(t); tok == "" {
		t.Fatal("login through the edge after the panic: no token")
	}
	if auth.exited() {
		t.Fatalf("auth exited after one actor panic: %v", auth.err)
	}

	// An unknown actor is refused with a clear error (a service error with
	// the envelope), not a hang and not a success.
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, err = natsx.Request(ctx, ops, c.subj.ChaosPanic(), messages.ChaosPanic{Actor: "auth/nope"}, nil, nil)
	var me *messages.Error
	if !errors.As(err, &me) || me.Code != messages.CodeUnknownActor {
		t.Errorf("chaos on an unknown actor: %v, want a %s error", err, messages.CodeUnknownActor)
	}
	// So is a role that no process hosts (it used to get no answer at all).
	_, err = natsx.Request(ctx, ops, c.subj.ChaosPanic(), messages.ChaosPanic{Actor: "nosuchrole"}, nil, nil)
	if !errors.As(err, &me) || me.Code != messages.CodeUnknownActor {
		t.Errorf("chaos on an unknown role: %v, want a %s error", err, messages.CodeUnknownActor)
	}
}

package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/actors/supervise"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// chaosTarget is a role whose actors the chaos switch may panic.
type chaosTarget struct {
	role    string
	tree    func() *supervise.Role // nil while the role is stopped (dev --chaos)
	primary string                 // the actor that {"actor":"<role>"} names
}

// startChaos answers sensorhub.chaos.panic when --chaos is given: it sends a
// supervise.Crash to the named actor, so a person can watch a supervised
// restart in the logs. "auth" names the role's primary actor (the first
// login actor); "auth/validate-0" names one by its child name. Every
// process subscribes without a queue group: the process that hosts the
// role answers for it, and an actor of no role at all (or a malformed
// request) is answered by all of them alike.
func startChaos(l *lifecycle, nc *nats.Conn, c Common, logger *slog.Logger, targets ...chaosTarget) error {
	if !c.Chaos {
		return nil
	}
	subj, err := subjects(c)
	if err != nil {
		return err
	}
	logger.Warn("chaos switch enabled: " + subj.ChaosPanic() + " can crash actors on request")
	sub, err := nc.Subscribe(subj.ChaosPanic(), func(m *nats.Msg) {
		req, err := messages.DecodeChaosPanic(m.Data)
		if err != nil {
			_ = natsx.RespondMsgError(m, err) // every process says the same
			return
		}
		role, child, _ := strings.Cut(req.Actor, "/")
		if !slices.Contains(messages.Roles, role) {
			// No process hosts such a role, so none would answer: every one
			// says so (the first answer wins), instead of a timeout.
			_ = natsx.RespondMsgError(m, &messages.Error{Code: messages.CodeUnknownActor,
				Message: "no role " + strconv.Quote(role) + " in " + req.Actor + "; roles: " + strings.Join(messages.Roles, ", ")})
			return
		}
		for _, t := range targets {
			tree := t.tree()
			if t.role != role || tree == nil {
				continue // a stopped role answers nothing, as a killed process
			}
			names := tree.Names()
			sort.Strings(names)
			if child == "" {
				child = t.primary
			}
			pid := tree.Child(child)
			if pid == nil {
				_ = natsx.RespondMsgError(m, &messages.Error{Code: messages.CodeUnknownActor, Message: "no actor " + req.Actor + "; known: " + strings.Join(names, ", ")})
				return
			}
			logger.Warn("chaos: panicking actor on request", "actor", pid.GetId())
			tree.Send(pid, &supervise.Crash{Reason: "requested through " + subj.ChaosPanic()})
			b, _ := json.Marshal(messages.ChaosReply{Actor: pid.GetId(), Panicked: true})
			_ = m.Respond(b)
			return
		}
	})
	if err != nil {
		return err
	}
	l.defer_("chaos", func() { _ = sub.Unsubscribe() })
	return nil
}

// chaosSwitch is something `dev --chaos` can take away and give back.
type chaosSwitch struct {
	stop, start func(ctx context.Context) error
	running     func() bool
}

// startChaosControl answers sensorhub.chaos.control when --chaos is given:
// it stops and starts the named switch (the embedded Kafka broker, ...), as
// the failure drills do, and answers the state of every switch. Only admin
// may publish there (natsauth.PersonPermissions). nc must stay up while any
// switch is stopped: dev gives it a connection of its own.
func startChaosControl(l *lifecycle, nc *nats.Conn, c Common, logger *slog.Logger, switches map[string]chaosSwitch) error {
	if !c.Chaos {
		return nil
	}
	subj, err := subjects(c)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(switches))
	var mu sync.Mutex // one change at a time
	states := func() map[string]string {
		out := make(map[string]string, len(switches))
		for name, s := range switches {
			out[name] = messages.ChaosStateStopped
			if s.running() {
				out[name] = messages.ChaosStateRunning
			}
		}
		return out
	}
	logger.Warn("chaos control enabled: "+subj.ChaosControl()+" can stop and start parts of dev", "targets", names)
	sub, err := nc.Subscribe(subj.ChaosControl(), func(m *nats.Msg) {
		req, err := messages.DecodeChaosControl(m.Data)
		if err != nil {
			_ = natsx.RespondMsgError(m, err)
			return
		}
		s, ok := switches[req.Target]
		if !ok {
			_ = natsx.RespondMsgError(m, &messages.Error{Code: messages.CodeUnknownActor,
				Message: "no chaos target " + strconv.Quote(req.Target) + "; targets: " + strings.Join(names, ", ")})
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		switch req.Action {
		case messages.ChaosActionStop:
			logger.Warn("chaos: stopping on request", "target", req.Target)
			err = s.stop(ctx)
		case messages.ChaosActionStart:
			logger.Warn("chaos: starting on request", "target", req.Target)
			err = s.start(ctx)
		}
		if err != nil {
			_ = natsx.RespondMsgError(m, &messages.Error{Code: messages.CodeUnavailable, Message: req.Action + " " + req.Target + ": " + err.Error()})
			return
		}
		b, _ := json.Marshal(messages.ChaosControlReply{Target: req.Target, Action: req.Action, States: states()})
		_ = m.Respond(b)
	})
	if err != nil {
		return err
	}
	l.defer_("chaos control", func() { _ = sub.Unsubscribe() })
	return nil
}

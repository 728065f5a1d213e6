package actortest_test

import (
	"testing"

	"sensorhub/actors/actortest"

	"sensorhub/internal/testenv"
)

func TestLogBuffer(t *testing.T) {
	logger, logs := actortest.CaptureLogs(t)
	go logger.With("actor", "auth/login-0").WithGroup("g").Warn("actor supervision", "directive", "restart", "n", 3)
	rec := logs.WaitFor(t, "actor supervision", "actor", "auth/login-0", "g.directive", "restart", "g.n", 3)
	if rec.Attr("g.n") != "3" {
		t.Errorf("record = %s", rec)
	}
	logger.Info("other")
	if logs.Count("actor supervision") != 1 || logs.Count("") != 2 || len(logs.Records()) != 2 {
		t.Errorf("records = %v", logs.Records())
	}
	if len(logs.Find("actor supervision", "g.directive", "stop")) != 0 {
		t.Error("matched a wrong attr value")
	}
}

func TestProbe(t *testing.T) {
	system := actortest.NewSystem(t)
	pid, ch := actortest.Probe(t, system)
	system.Root.Send(pid, "hello")
	if got := actortest.Receive(t, ch); got != "hello" {
		t.Errorf("got %v", got)
	}
	done := make(chan struct{})
	close(done)
	actortest.Closed(t, done)
	n := 0
	testenv.Eventually(t, "n to reach 3", func() bool { n++; return n >= 3 })
}

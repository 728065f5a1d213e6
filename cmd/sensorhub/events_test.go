package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/testenv"
)

// In dev, a submitted test's event shows up both with `nats sub
// 'sensorhub.events.>'` and with kcat reading the Kafka topic, the two
// commands the README gives, and /kafka/stats counts it.
func TestDevEventVisibleWithNatsSubAndKcat(t *testing.T) {
	needTools(t, "nats", "kcat")
	addrs := startDev(t)
	base := "http://" + addrs.HTTP
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()

	var subOut testenv.Buffer
	// As the README has it: admin's context, which dev wrote (only an
	// admin may read every event).
	sub := exec.CommandContext(ctx, "nats", "--context", "sensorhub-dev", "sub", "sensorhub.events.>", "--count", "1")
	sub.Env = append(os.Environ(), "NATS_CONTEXT=")
	sub.Stdout, sub.Stderr = &subOut, &subOut
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(subOut.String(), "Subscribing on") {
		if time.Now().After(deadline) {
			t.Fatalf("nats sub never subscribed: %s", subOut.String())
		}
		time.Sleep(10 * time.Millisecond) // polling a child process's output
	}

	req, _ := http.NewRequest(http.MethodPost, base+"/test/sensor/vibration", nil)
	req.Header.Set("Authorization", "Bearer "+devLogin(t, base))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc struct {
		TestID string `json:"test_id"`
	}
	decode(t, resp, http.StatusAccepted, &acc)
	submitted := time.Now()

	select {
	case err := <-subDone:
		if err != nil {
			t.Fatalf("nats sub: %v: %s", err, subOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("nats sub saw no event: %s", subOut.String())
	}
	t.Logf("event on NATS %s after the submission", time.Since(submitted).Round(time.Millisecond))
	if !strings.Contains(subOut.String(), acc.TestID) || !strings.Contains(subOut.String(), "sensorhub.events.vibration.completed") {
		t.Fatalf("nats sub output lacks the test's event:\n%s", subOut.String())
	}

	// kcat as in the README (plus -c 1 so that it stops after the event).
	kcat := exec.CommandContext(ctx, "kcat", "-b", addrs.Kafka, "-t", "sensor-events", "-C", "-c", "1", "-f", "%k %s\n")
	var kOut, kErr testenv.Buffer
	kcat.Stdout, kcat.Stderr = &kOut, &kErr
	if err := kcat.Run(); err != nil {
		t.Fatalf("kcat: %v: %s", err, kErr.String())
	}
	t.Logf("event in Kafka %s after the submission", time.Since(submitted).Round(time.Millisecond))
	line := strings.TrimSpace(kOut.String())
	key, payload, _ := strings.Cut(line, " ")
	var ev struct {
		TestID   string `json:"test_id"`
		EventID  string `json:"event_id"`
		SensorID string `json:"sensor_id"`
		Schema   int    `json:"schema"`
	}
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		t.Fatalf("kcat printed %q: %v", line, err)
	}
	if ev.TestID != acc.TestID || ev.EventID == "" || ev.Schema != 1 || key != ev.SensorID {
		t.Fatalf("Kafka record %q: want test %s, schema 1, key = sensor id", line, acc.TestID)
	}

	// The record's headers, as the README shows them with kcat -f '%h':
	// the CloudEvents attributes beside today's headers.
	kcat = exec.CommandContext(ctx, "kcat", "-b", addrs.Kafka, "-t", "sensor-events", "-C", "-c", "1", "-f", "%h\n")
	var hOut, hErr testenv.Buffer
	kcat.Stdout, kcat.Stderr = &hOut, &hErr
	if err := kcat.Run(); err != nil {
		t.Fatalf("kcat -f %%h: %v: %s", err, hErr.String())
	}
	t.Logf("kcat -f %%h: %s", strings.TrimSpace(hOut.String()))
	headers := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSpace(hOut.String()), ",") {
		k, v, _ := strings.Cut(kv, "=")
		headers[k] = v
	}
	for k, want := range map[string]string{
		"ce_specversion": "1.0",
		"ce_id":          ev.EventID,
		"ce_type":        "sensor.test.completed",
		"ce_source":      "/sensorhub/sensor",
		"ce_subject":     acc.TestID,
		"content-type":   "application/json",
		"event-id":       ev.EventID,
		"event-type":     "sensor.test.completed",
		"nats-stream":    "SENSOR_EVENTS",
	} {
		if headers[k] != want {
			t.Errorf("kcat -f %%h: header %s = %q, want %q (all: %s)", k, headers[k], want, hOut.String())
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, headers["ce_time"]); err != nil || at.Before(submitted.Add(-time.Minute)) {
		t.Errorf("kcat -f %%h: ce_time %q is not the completion time (%v)", headers["ce_time"], err)
	}

	for {
		resp, err := http.Get(base + "/kafka/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Successful int `json:"successful"`
			Queued     int `json:"queued"`
		}
		decode(t, resp, http.StatusOK, &st)
		if st.Successful == 1 && st.Queued == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("/kafka/stats: %+v, want successful 1", st)
		}
		time.Sleep(20 * time.Millisecond) // polling the stats, with a deadline
	}
}

package messages_test

import (
	"errors"
	"fmt"

	"sensorhub/messages"
)

func ExampleSubjects() {
	s, _ := messages.NewSubjects("") // the default prefix
	fmt.Println(s.AuthToken())
	fmt.Println(s.SensorSubmit())
	fmt.Println(s.Health(messages.RoleBridge))
	fmt.Println(s.Event("temperature", messages.EventKindCompleted))
	fmt.Println(s.Events())
	// Output:
	// sensorhub.auth.token
	// sensorhub.sensor.submit
	// sensorhub.bridge.health
	// sensorhub.events.temperature.completed
	// sensorhub.events.>
}

func ExampleDecodeSubmitTest() {
	// The seed's curl sends no body: the path gives the type, defaults fill the rest.
	req, err := messages.DecodeSubmitTest(nil, "temperature")
	fmt.Println(req.SensorType, req.SensorID, req.IntervalMS, len(req.Readings), err)

	req, err = messages.DecodeSubmitTest([]byte(`{"sensor_id":"lab-7","readings":[21.5,21.6],"reference":21.5}`), "temperature")
	fmt.Println(req.SensorID, req.Readings, *req.Reference, err)

	_, err = messages.DecodeSubmitTest([]byte(`{"readings":"lots"}`), "temperature")
	fmt.Println(messages.CodeOf(err), err)
	// Output:
	// temperature default 1000 0 <nil>
	// lab-7 [21.5 21.6] 21.5 <nil>
	// invalid_json invalid_json: field "readings": expected []float64, got string
}

func ExampleError() {
	err := fmt.Errorf("insert test: %w", messages.ErrDatabaseUnavailable)
	e := messages.AsError(err)
	fmt.Println(e.HTTPStatus(), string(e.JSON()))
	fmt.Println(errors.Is(err, messages.NewError(messages.CodeDatabaseUnavailable, "any message")))
	// Output:
	// 503 {"error":"Database unavailable","code":"database_unavailable"}
	// true
}

func ExampleDecodeTokenRequest() {
	r, err := messages.DecodeTokenRequest([]byte(`{"username":"admin","password":"admin123"}`))
	fmt.Println(r.Username, err)
	_, err = messages.DecodeTokenRequest([]byte(`{"username":"admin"}`))
	fmt.Println(err)
	// Output:
	// admin <nil>
	// bad_request: username and password are required
}

func ExampleTestCompleted() {
	e := messages.TestCompleted{
		Schema: messages.EventSchema, EventID: "e1", Type: messages.EventTypeCompleted,
		TestID: "t1", SensorType: "co2", SensorID: "s1", Owner: "admin",
		Status: messages.StatusCompleted, Verdict: messages.VerdictPass,
	}
	b, _ := e.Encode()
	back, err := messages.DecodeEvent(b)
	fmt.Println(back.Kind(), back.EventID, err)
	// Output: completed e1 <nil>
}

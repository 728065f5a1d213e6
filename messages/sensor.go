package messages

import (
	"fmt"
	"math"
	"regexp"
	"time"
)

// Limits on a submitted test.
const (
	MaxReadings       = 10_000
	MinIntervalMS     = 1
	MaxIntervalMS     = 3_600_000
	DefaultIntervalMS = 1000
	MaxIdempotencyLen = 128
)

var (
	sensorIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	sensorTypePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	idemKeyPattern    = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// ValidSensorType reports whether s has the shape of a sensor type (it may
// still be missing from the catalogue). A valid type is a safe subject token.
func ValidSensorType(s string) bool { return sensorTypePattern.MatchString(s) }

// SubmitTest asks for a sensor test (sensorhub.sensor.submit,
// POST /test/sensor/{sensor_type}). Every field is optional over HTTP, where
// the sensor type comes from the path; with no readings the sensor role
// simulates an acquisition.
type SubmitTest struct {
	SensorType string    `json:"sensor_type"`
	SensorID   string    `json:"sensor_id,omitempty"`
	Readings   []float64 `json:"readings,omitempty"`
	IntervalMS int       `json:"interval_ms,omitempty"`
	Reference  *float64  `json:"reference,omitempty"`
	// IdempotencyKey makes a retried submission return the first test id.
	// The Idempotency-Key header, when present, takes precedence.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Token is the bearer token when the caller cannot send an
	// Authorization header (the Authorization header wins when both are set).
	Token string `json:"token,omitempty"`
}

// DefaultSensorID is used when a submission names no sensor.
const DefaultSensorID = "default"

// Normalize fills defaults: sensor id and interval.
func (r *SubmitTest) Normalize() {
	if r.SensorID == "" {
		r.SensorID = DefaultSensorID
	}
	if r.IntervalMS == 0 {
		r.IntervalMS = DefaultIntervalMS
	}
}

// Validate checks the shape of a (normalized) submission; whether the sensor
// type exists in the catalogue is for the sensor role to say.
func (r SubmitTest) Validate() error {
	if !ValidSensorType(r.SensorType) {
		return &Error{Code: CodeUnknownSensorType, Message: fmt.Sprintf("unknown sensor type %s", quote(r.SensorType))}
	}
	if !sensorIDPattern.MatchString(r.SensorID) {
		return &Error{Code: CodeInvalidSensorID, Message: "sensor_id must be 1 to 128 of [A-Za-z0-9._:-]"}
	}
	if len(r.Readings) > MaxReadings {
		return &Error{Code: CodeInvalidReadings, Message: fmt.Sprintf("at most %d readings, got %d", MaxReadings, len(r.Readings))}
	}
	for i, v := range r.Readings {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &Error{Code: CodeInvalidReadings, Message: fmt.Sprintf("reading %d is not a finite number", i)}
		}
	}
	if r.IntervalMS < MinIntervalMS || r.IntervalMS > MaxIntervalMS {
		return &Error{Code: CodeInvalidReadings, Message: fmt.Sprintf("interval_ms must be between %d and %d", MinIntervalMS, MaxIntervalMS)}
	}
	if r.Reference != nil && (math.IsNaN(*r.Reference) || math.IsInf(*r.Reference, 0)) {
		return &Error{Code: CodeInvalidReadings, Message: "reference is not a finite number"}
	}
	if r.IdempotencyKey != "" && !idemKeyPattern.MatchString(r.IdempotencyKey) {
		return &Error{Code: CodeBadRequest, Message: "idempotency key must be 1 to 128 printable ASCII characters"}
	}
	if len(r.Token) > MaxTokenLen {
		return ErrUnauthorized
	}
	return nil
}

// DecodeSubmitTest parses a submission body. An empty body is a valid
// submission (the seed's curl sends none). pathType, when non-empty, is the
// sensor type from the URL and overrides the body's. The result is
// normalized and validated.
func DecodeSubmitTest(data []byte, pathType string) (SubmitTest, error) {
	var r SubmitTest
	if err := decodeStrict(data, &r, true); err != nil {
		return SubmitTest{}, err
	}
	if pathType != "" {
		if r.SensorType != "" && r.SensorType != pathType {
			return SubmitTest{}, &Error{Code: CodeBadRequest, Message: "sensor_type in the body differs from the path"}
		}
		r.SensorType = pathType
	}
	r.Normalize()
	return r, r.Validate()
}

// Test statuses, on the wire and in the store.
const (
	// StatusProcessing is a test accepted and not yet finished.
	StatusProcessing = "processing"
	// StatusCompleted is a test evaluated with a verdict in its result.
	StatusCompleted = "completed"
	// StatusFailed is a test that could not be evaluated; its reason says why.
	StatusFailed = "failed"
)

// Verdicts of a completed test.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

// Sources of the readings.
const (
	SourceSubmitted = "submitted"
	SourceSimulated = "simulated"
)

// TestAccepted is the immediate answer to a submission: the test is stored
// and will be processed. For a duplicate (an idempotency key met again)
// Status is the earlier test's current status: "processing", "completed"
// or "failed"; the edge answers 202 for processing and 200 for a test
// already finished.
type TestAccepted struct {
	TestID string `json:"test_id"`
	Status string `json:"status"` // processing; a duplicate's may be completed or failed
	// AuthMode says how the caller's token was checked ("online" or "fallback").
	AuthMode string `json:"auth_mode,omitempty"`
	// Duplicate is true when an idempotency key matched an earlier submission.
	Duplicate bool `json:"duplicate,omitempty"`
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidTestID reports whether s has the shape of a test id (a UUID).
func ValidTestID(s string) bool { return uuidPattern.MatchString(s) }

// GetResult reads one test (sensorhub.sensor.result, GET /test/{test_id}).
type GetResult struct {
	TestID string `json:"test_id"`
	Token  string `json:"token,omitempty"`
}

// Validate checks the test id's shape.
func (r GetResult) Validate() error {
	if !ValidTestID(r.TestID) {
		return &Error{Code: CodeInvalidTestID, Message: "test_id must be a UUID"}
	}
	if len(r.Token) > MaxTokenLen {
		return ErrUnauthorized
	}
	return nil
}

// DecodeGetResult parses and validates a result request.
func DecodeGetResult(data []byte) (GetResult, error) {
	var r GetResult
	if err := decodeStrict(data, &r, false); err != nil {
		return GetResult{}, err
	}
	return r, r.Validate()
}

// Check is one check of an evaluation.
type Check struct {
	Name   string  `json:"name"` // range, spike, noise, drift, accuracy, count
	Passed bool    `json:"passed"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Detail string  `json:"detail"`
}

// Stats summarises the readings of a test.
type Stats struct {
	Count          int      `json:"count"`
	Min            float64  `json:"min"`
	Max            float64  `json:"max"`
	Mean           float64  `json:"mean"`
	StdDev         float64  `json:"stddev"`
	Noise          float64  `json:"noise"`         // stddev of successive differences
	DriftPerMinute float64  `json:"drift_per_min"` // slope of a least-squares line
	Spikes         int      `json:"spikes"`
	OutOfRange     int      `json:"out_of_range"`
	ReferenceError *float64 `json:"reference_error,omitempty"` // mean - reference
}

// TestRecord is a test as stored and as returned by sensorhub.sensor.result
// and GET /test/{test_id}.
type TestRecord struct {
	TestID      string     `json:"test_id"`
	Status      string     `json:"status"`
	SensorType  string     `json:"sensor_type"`
	SensorID    string     `json:"sensor_id"`
	Unit        string     `json:"unit,omitempty"`
	Owner       string     `json:"owner"`
	AuthMode    string     `json:"auth_mode"`
	Source      string     `json:"source,omitempty"`
	Verdict     string     `json:"verdict,omitempty"`
	Checks      []Check    `json:"checks,omitempty"`
	Stats       *Stats     `json:"stats,omitempty"`
	Reason      string     `json:"reason,omitempty"` // why a test failed
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// SensorSpec is a sensor type in the catalogue and its acceptance limits.
type SensorSpec struct {
	Type        string  `json:"type"`
	Description string  `json:"description"`
	Unit        string  `json:"unit"`
	Min         float64 `json:"min"`          // valid range, low end
	Max         float64 `json:"max"`          // valid range, high end
	MaxStep     float64 `json:"max_step"`     // largest step between readings (spike)
	MaxNoise    float64 `json:"max_noise"`    // largest stddev of successive differences
	MaxDrift    float64 `json:"max_drift"`    // largest drift per minute
	Accuracy    float64 `json:"accuracy"`     // largest |mean - reference|
	Nominal     float64 `json:"nominal"`      // typical value for simulation
	IntervalMS  int     `json:"interval_ms"`  // typical sampling interval
	SimReadings int     `json:"sim_readings"` // readings in a simulated acquisition
}

// SensorTypesReply is the catalogue (sensorhub.sensor.types, GET /sensor/types).
type SensorTypesReply struct {
	Types []SensorSpec `json:"types"`
}

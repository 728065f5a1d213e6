package messages

import (
	"fmt"
	"time"
)

// Bounds of the dead-letter requests: one request touches at most this
// many dead letters, so that each answers within its deadline; `sensorhub
// dlq` pages through more with After.
const (
	DefaultDeadLetterPage = 50
	MaxDeadLetterPage     = 500
	MaxDeadLetterReason   = 256
)

// Results of one dead letter in a replay or purge (DeadLetterResult.Status).
const (
	DeadLetterReplayed = "replayed" // Kafka acknowledged it; removed from the DLQ
	DeadLetterPurged   = "purged"   // deleted from the DLQ
	DeadLetterFailed   = "failed"   // left in the DLQ; Code and Error say why
)

// ListDeadLetters asks the bridge for a page of the dead letters in
// SENSOR_EVENTS_DLQ (sensorhub.bridge.dlq.list; admin only), oldest first.
type ListDeadLetters struct {
	// After lists those with a DLQ sequence above it (0: from the first);
	// the previous page's Next.
	After uint64 `json:"after,omitempty"`
	// Limit is the page size (default DefaultDeadLetterPage, at most
	// MaxDeadLetterPage).
	Limit int `json:"limit,omitempty"`
	// Reason, when set, keeps only the dead letters whose reason contains
	// it.
	Reason string `json:"reason,omitempty"`
}

// DecodeListDeadLetters parses a list request; an empty body lists the
// first page.
func DecodeListDeadLetters(data []byte) (ListDeadLetters, error) {
	var r ListDeadLetters
	if err := decodeStrict(data, &r, true); err != nil {
		return ListDeadLetters{}, err
	}
	if r.Limit < 0 || r.Limit > MaxDeadLetterPage {
		return ListDeadLetters{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("limit must be 1 to %d (0: %d)", MaxDeadLetterPage, DefaultDeadLetterPage)}
	}
	if r.Limit == 0 {
		r.Limit = DefaultDeadLetterPage
	}
	if len(r.Reason) > MaxDeadLetterReason {
		return ListDeadLetters{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("reason longer than %d bytes", MaxDeadLetterReason)}
	}
	return r, nil
}

// DeadLetterSummary is one dead letter as `sensorhub dlq ls` shows it.
type DeadLetterSummary struct {
	// Sequence is its place in SENSOR_EVENTS_DLQ: what show, replay and
	// purge name it by.
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"` // when it was dead-lettered
	// EventID is the event's id (the event-id header it keeps); TestID and
	// SensorID are from its headers, empty when it had none.
	EventID  string `json:"event_id"`
	TestID   string `json:"test_id"`
	SensorID string `json:"sensor_id"`
	// Subject, Stream and OriginalSequence locate the event where it came
	// from (SENSOR_EVENTS).
	Subject          string `json:"subject"`
	Stream           string `json:"stream"`
	OriginalSequence uint64 `json:"original_sequence"`
	Reason           string `json:"reason"`
	Size             int    `json:"size"` // payload bytes
}

// DeadLetterPage is the answer to ListDeadLetters.
type DeadLetterPage struct {
	DeadLetters []DeadLetterSummary `json:"dead_letters"`
	// Total is how many dead letters the stream holds (whatever the
	// filter).
	Total uint64 `json:"total"`
	// Next is the After of the next page; 0 when this page is the last.
	Next uint64 `json:"next"`
}

// GetDeadLetter asks for one dead letter with its headers and payload
// (sensorhub.bridge.dlq.get; admin only).
type GetDeadLetter struct {
	Sequence uint64 `json:"sequence"`
}

// DecodeGetDeadLetter parses a get request.
func DecodeGetDeadLetter(data []byte) (GetDeadLetter, error) {
	var r GetDeadLetter
	if err := decodeStrict(data, &r, false); err != nil {
		return GetDeadLetter{}, err
	}
	if r.Sequence == 0 {
		return GetDeadLetter{}, &Error{Code: CodeBadRequest, Message: "sequence is required (a DLQ sequence, as dlq ls shows it)"}
	}
	return r, nil
}

// Payload encodings of DeadLetterDetail.
const (
	PayloadText   = "text"   // the payload is valid UTF-8, as it is
	PayloadBase64 = "base64" // standard base64 of the payload bytes
)

// DeadLetterDetail is one dead letter whole: the answer to GetDeadLetter.
type DeadLetterDetail struct {
	DeadLetter DeadLetterSummary `json:"dead_letter"`
	// Headers are the dead letter's NATS headers: the event's own (its
	// id as event-id) and the reason and origin.
	Headers map[string][]string `json:"headers"`
	// Payload is the event's payload, unchanged, in PayloadEncoding.
	Payload         string `json:"payload"`
	PayloadEncoding string `json:"payload_encoding"`
}

// DeadLetterSelection names dead letters: by their DLQ sequences, or all
// of them (from above After, those whose reason contains Reason). It is
// what ReplayDeadLetters and PurgeDeadLetters select by.
type DeadLetterSelection struct {
	Sequences []uint64 `json:"sequences,omitempty"`
	All       bool     `json:"all,omitempty"`
	// Reason and After go with All: the dead letters whose reason contains
	// Reason, from above the sequence After (the previous answer's Next).
	Reason string `json:"reason,omitempty"`
	After  uint64 `json:"after,omitempty"`
}

func (s DeadLetterSelection) validate() error {
	switch {
	case len(s.Sequences) == 0 && !s.All:
		return &Error{Code: CodeBadRequest, Message: "name the dead letters: sequences, or all"}
	case len(s.Sequences) > 0 && s.All:
		return &Error{Code: CodeBadRequest, Message: "give sequences or all, not both"}
	case len(s.Sequences) > MaxDeadLetterPage:
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("at most %d sequences at once", MaxDeadLetterPage)}
	case !s.All && (s.Reason != "" || s.After != 0):
		return &Error{Code: CodeBadRequest, Message: "reason and after go with all"}
	case len(s.Reason) > MaxDeadLetterReason:
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("reason longer than %d bytes", MaxDeadLetterReason)}
	}
	for _, seq := range s.Sequences {
		if seq == 0 {
			return &Error{Code: CodeBadRequest, Message: "sequence 0 names no dead letter (they start at 1)"}
		}
	}
	return nil
}

// ReplayDeadLetters asks the bridge to write dead letters to Kafka again,
// with their original event id, and to remove each from the DLQ once Kafka
// acknowledged it (sensorhub.bridge.dlq.replay; admin only).
type ReplayDeadLetters struct {
	// Sequences names dead letters by DLQ sequence; or All names every
	// one (from above After, whose reason contains Reason), a page per
	// request.
	Sequences []uint64 `json:"sequences,omitempty"`
	All       bool     `json:"all,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	After     uint64   `json:"after,omitempty"`
}

// Selection is the dead letters r names.
func (r ReplayDeadLetters) Selection() DeadLetterSelection { return DeadLetterSelection(r) }

// DecodeReplayDeadLetters parses a replay request: a selection is required.
func DecodeReplayDeadLetters(data []byte) (ReplayDeadLetters, error) {
	var r ReplayDeadLetters
	if err := decodeStrict(data, &r, false); err != nil {
		return ReplayDeadLetters{}, err
	}
	if err := r.Selection().validate(); err != nil {
		return ReplayDeadLetters{}, err
	}
	return r, nil
}

// PurgeDeadLetters asks the bridge to delete dead letters for good
// (sensorhub.bridge.dlq.purge; admin only). Confirm must be true.
type PurgeDeadLetters struct {
	// Sequences, All, Reason and After select as in ReplayDeadLetters.
	Sequences []uint64 `json:"sequences,omitempty"`
	All       bool     `json:"all,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	After     uint64   `json:"after,omitempty"`
	// Confirm says the caller means it: a purge cannot be undone.
	Confirm bool `json:"confirm"`
}

// Selection is the dead letters r names.
func (r PurgeDeadLetters) Selection() DeadLetterSelection {
	return DeadLetterSelection{Sequences: r.Sequences, All: r.All, Reason: r.Reason, After: r.After}
}

// DecodePurgeDeadLetters parses a purge request: a selection and the
// confirmation are required.
func DecodePurgeDeadLetters(data []byte) (PurgeDeadLetters, error) {
	var r PurgeDeadLetters
	if err := decodeStrict(data, &r, false); err != nil {
		return PurgeDeadLetters{}, err
	}
	if err := r.Selection().validate(); err != nil {
		return PurgeDeadLetters{}, err
	}
	if !r.Confirm {
		return PurgeDeadLetters{}, &Error{Code: CodeBadRequest, Message: "a purge deletes for good: confirm it (\"confirm\":true, dlq purge --yes)"}
	}
	return r, nil
}

// DeadLetterResult is what became of one dead letter in a replay or purge.
type DeadLetterResult struct {
	Sequence uint64 `json:"sequence"`
	EventID  string `json:"event_id,omitempty"`
	Status   string `json:"status"` // DeadLetterReplayed, DeadLetterPurged or DeadLetterFailed
	// Code and Error say why it failed (not_found, unavailable: Kafka
	// did not take it, bad_request: it still cannot be relayed).
	Code  Code   `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// DeadLettersDone is the answer to a replay or purge.
type DeadLettersDone struct {
	Results []DeadLetterResult `json:"results"`
	// Done and Failed count Results by outcome.
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// Next, for a selection of all, is the After of the next request; 0
	// when every dead letter selected has been seen.
	Next uint64 `json:"next"`
}

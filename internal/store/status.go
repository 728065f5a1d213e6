package store

import "fmt"

// Status values of a Test.
const (
	// StatusProcessing is a test accepted and not yet finished.
	StatusProcessing = "processing"
	// StatusCompleted is a test evaluated with a verdict in its Result.
	StatusCompleted = "completed"
	// StatusFailed is a test that could not be evaluated; Reason says why.
	StatusFailed = "failed"
)

// Statuses lists every status a Test can have, in lifecycle order.
func Statuses() []string {
	return []string{StatusProcessing, StatusCompleted, StatusFailed}
}

// IsFinal reports whether status is one a Completion may set.
func IsFinal(status string) bool {
	return status == StatusCompleted || status == StatusFailed
}

// ValidateCompletion refuses a Completion that can only be a caller's bug:
// a status that is not final, or an event without id or subject.
func ValidateCompletion(c Completion) error {
	switch {
	case !IsFinal(c.Status):
		return fmt.Errorf("completion of test %q: status %q is not final", c.TestID, c.Status)
	case c.Event.EventID == "" || c.Event.Subject == "":
		return fmt.Errorf("completion of test %q: event id and subject are required", c.TestID)
	}
	return nil
}

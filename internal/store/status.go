package store

import (
	"fmt"

	"sensorhub/messages"
)

// A Test's Status is one of messages.StatusProcessing, StatusCompleted and
// StatusFailed: the store keeps the wire's values, so they are declared once.

// Statuses lists every status a Test can have, in lifecycle order.
func Statuses() []string {
	return []string{messages.StatusProcessing, messages.StatusCompleted, messages.StatusFailed}
}

// IsFinal reports whether status is one a Completion may set.
func IsFinal(status string) bool {
	return status == messages.StatusCompleted || status == messages.StatusFailed
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

// ValidateCompletions refuses a batch with a completion that can only be a
// caller's bug, before any of it touches the database.
func ValidateCompletions(cs []Completion) error {
	for _, c := range cs {
		if err := ValidateCompletion(c); err != nil {
			return err
		}
	}
	return nil
}

package messages

// The precedence of the transport over the body, in one place: a caller
// that can send headers (HTTP, `nats req -H`) is believed over the fields
// of the body it sent with them.

// CallerToken is the bearer token of a submission or a result request: the
// Authorization header value when there is one, else the body's token
// field. A header that is there but does not carry a bearer token gives ""
// (refused) rather than falling back to the body; so does a token longer
// than MaxTokenLen.
func CallerToken(authorization, field string) string {
	tok := field
	if authorization != "" {
		tok = BearerToken(authorization)
	}
	if len(tok) > MaxTokenLen {
		return ""
	}
	return tok
}

// UseIdempotencyKey applies the Idempotency-Key header value to s: a
// non-empty header wins over the body's idempotency_key and is validated
// like it; an empty one leaves the body's.
func (s *SubmitTest) UseIdempotencyKey(header string) error {
	if header == "" {
		return nil
	}
	s.IdempotencyKey = header
	return s.Validate()
}

package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxBodyBytes is the largest request body any decoder accepts. It fits
// 10,000 readings with room to spare.
const MaxBodyBytes = 1 << 20

// decodeStrict decodes one JSON object into v: unknown fields, trailing data,
// wrong types and oversize bodies are refused with a stable code. An empty
// body decodes to the zero value when allowEmpty is set.
func decodeStrict(data []byte, v any, allowEmpty bool) error {
	if len(data) > MaxBodyBytes {
		return &Error{Code: CodeBodyTooLarge, Message: fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		if allowEmpty {
			return nil
		}
		return &Error{Code: CodeInvalidJSON, Message: "empty body: a JSON object is required"}
	}
	if trimmed[0] != '{' {
		return &Error{Code: CodeInvalidJSON, Message: "body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Code: CodeInvalidJSON, Message: "unexpected data after the JSON object"}
	}
	return nil
}

func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("field %q: expected %s, got %s", field, typeErr.Type, typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: CodeInvalidJSON, Message: "truncated JSON"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &Error{Code: CodeInvalidJSON, Message: "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	default:
		return &Error{Code: CodeInvalidJSON, Message: "invalid JSON"}
	}
}

// quote bounds and quotes a string taken from outside, so a hostile value
// cannot flood a log line or an error message.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// jsonUnmarshalObject decodes a JSON object leniently (unknown members are
// ignored), for documents defined by others such as a JWKS.
func jsonUnmarshalObject(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &Error{Code: CodeInvalidJSON, Message: "body must be a JSON object"}
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return jsonError(err)
	}
	return nil
}

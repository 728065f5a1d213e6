package messages

import "testing"

// Every malformed dead-letter request is refused with a stable 4xx code,
// and a purge without its confirmation changes nothing.
func TestDecodeDeadLetterRequests(t *testing.T) {
	for _, c := range []struct {
		name string
		dec  func([]byte) error
		body string
		want Code // "" accepted
	}{
		{"list: empty body", listDec, ``, ""},
		{"list: a page", listDec, `{"after":4,"limit":500,"reason":"too large"}`, ""},
		{"list: limit too large", listDec, `{"limit":501}`, CodeBadRequest},
		{"list: negative limit", listDec, `{"limit":-1}`, CodeBadRequest},
		{"list: unknown field", listDec, `{"page":2}`, CodeInvalidJSON},
		{"get: a sequence", getDec, `{"sequence":7}`, ""},
		{"get: no sequence", getDec, `{}`, CodeBadRequest},
		{"get: negative", getDec, `{"sequence":-7}`, CodeInvalidJSON},
		{"get: empty", getDec, ``, CodeInvalidJSON},
		{"replay: sequences", replayDec, `{"sequences":[3,4]}`, ""},
		{"replay: all by reason", replayDec, `{"all":true,"reason":"too large"}`, ""},
		{"replay: no selector", replayDec, `{}`, CodeBadRequest},
		{"replay: both", replayDec, `{"all":true,"sequences":[1]}`, CodeBadRequest},
		{"replay: sequence 0", replayDec, `{"sequences":[0]}`, CodeBadRequest},
		{"replay: reason without all", replayDec, `{"sequences":[1],"reason":"x"}`, CodeBadRequest},
		{"purge: confirmed", purgeDec, `{"sequences":[3],"confirm":true}`, ""},
		{"purge: all confirmed", purgeDec, `{"all":true,"confirm":true}`, ""},
		{"purge: not confirmed", purgeDec, `{"sequences":[3]}`, CodeBadRequest},
		{"purge: no selector", purgeDec, `{"confirm":true}`, CodeBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.dec([]byte(c.body))
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if CodeOf(err) != c.want || CodeOf(err).HTTPStatus() >= 500 {
				t.Fatalf("%v, want %s", err, c.want)
			}
		})
	}
	if r, _ := DecodeListDeadLetters(nil); r.Limit != DefaultDeadLetterPage {
		t.Fatalf("default page size %d", r.Limit)
	}
}

func listDec(b []byte) error   { _, err := DecodeListDeadLetters(b); return err }
func getDec(b []byte) error    { _, err := DecodeGetDeadLetter(b); return err }
func replayDec(b []byte) error { _, err := DecodeReplayDeadLetters(b); return err }
func purgeDec(b []byte) error  { _, err := DecodePurgeDeadLetters(b); return err }

package edge

import (
	"bytes"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"sensorhub/messages"
)

// maxLoginBody bounds a login body well below MaxBodyBytes: credentials are
// a few hundred bytes, and a form is parsed in memory.
const maxLoginBody = 16 << 10

const msgTooManyLogins = "too many login attempts, try again later"

// handleLogin is POST /auth/token: form or JSON credentials, a coarse limit
// per client address, then sensorhub.auth.token.forwarded with the client's
// address, where the auth role applies the login limits (per user, per
// address) that NATS logins share.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, min(s.cfg.MaxBodyBytes, maxLoginBody))
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	req, err := decodeLogin(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	addr := clientAddr(r, s.cfg.TrustedProxies)
	if wait, ok := s.logins.allow(addrKey(addr), s.now()); !ok {
		e := messages.NewError(messages.CodeRateLimited, msgTooManyLogins)
		e.RetryAfter = max(1, int(math.Ceil(wait.Seconds())))
		writeError(w, e)
		return
	}
	if addr.IsValid() {
		req.ClientAddr = addr.String()
	}
	msg, err := s.call(r.Context(), s.auth, s.subj.AuthTokenForwarded(), req, nil, &messages.TokenReply{})
	if err != nil {
		s.fail(w, r, s.auth, messages.ErrAuthUnavailable, err)
		return
	}
	// RFC 6749 5.1: token responses must not be cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, msg.Data)
}

// decodeLogin reads credentials from a login body: JSON when the
// Content-Type says so, a URL-encoded form when it says so, and with no
// Content-Type a form unless the body is a JSON object. The result is
// validated; every error is a *messages.Error with a 4xx code.
func decodeLogin(contentType string, body []byte) (messages.TokenRequest, error) {
	mediaType := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return messages.TokenRequest{}, messages.NewError(messages.CodeBadRequest, "malformed Content-Type")
		}
		mediaType = mt
	}
	switch {
	case mediaType == "application/json", strings.HasSuffix(mediaType, "+json"),
		mediaType == "" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		req, err := messages.DecodeTokenRequest(body)
		if err != nil {
			return messages.TokenRequest{}, err
		}
		req.ClientAddr = "" // the edge sets it, never the client
		return req, nil
	case mediaType == "application/x-www-form-urlencoded", mediaType == "":
		return decodeLoginForm(body)
	default:
		return messages.TokenRequest{}, messages.NewError(messages.CodeBadRequest,
			"unsupported Content-Type: send application/x-www-form-urlencoded or application/json")
	}
}

// decodeLoginForm reads username and password from a URL-encoded form. Other
// fields of an OAuth2 password grant (scope, client_id, ...) are ignored,
// but grant_type, when sent, must be "password".
func decodeLoginForm(body []byte) (messages.TokenRequest, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return messages.TokenRequest{}, messages.NewError(messages.CodeBadRequest, "malformed form body")
	}
	for _, field := range []string{"username", "password", "grant_type"} {
		if len(form[field]) > 1 {
			return messages.TokenRequest{}, messages.NewError(messages.CodeBadRequest, "form field "+field+" given more than once")
		}
	}
	if gt := form.Get("grant_type"); gt != "" && gt != "password" {
		return messages.TokenRequest{}, messages.NewError(messages.CodeBadRequest, `grant_type must be "password"`)
	}
	req := messages.TokenRequest{Username: form.Get("username"), Password: form.Get("password")}
	if err := req.Validate(); err != nil {
		return messages.TokenRequest{}, err
	}
	// A JSON string cannot carry invalid UTF-8 (encoding would silently
	// replace it), so such a password could never match what was hashed.
	if !utf8.ValidString(req.Password) {
		return messages.TokenRequest{}, messages.NewError(messages.CodeBadRequest, "password is not UTF-8")
	}
	return req, nil
}

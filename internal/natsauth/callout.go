package natsauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// CalloutSubject is where the server asks the auth callout about each
// connecting person ($SYS.REQ.USER.AUTH, in the callout's account).
const CalloutSubject = calloutSubj

// serverXKeyHeader carries the server's curve key on a sealed request.
const serverXKeyHeader = "Nats-Server-Xkey"

// Limits of a person's connection: a handful of subscriptions (the CLI and
// a client library need a few), payloads a little above the largest
// request body the roles accept.
const (
	personMaxSubs    = 100
	personMaxPayload = 2 << 20
)

// CalloutRequest is one authorization request from the server.
type CalloutRequest struct {
	// Claims is the decoded request: who connects (ConnectOptions), from
	// where (ClientInformation.Host), to which server.
	Claims     *jwt.AuthorizationRequestClaims
	serverXKey string
}

// ErrMalformedCallout means a message on CalloutSubject is not a request
// from a server that this callout can read.
var ErrMalformedCallout = errors.New("malformed auth callout request")

// OpenRequest decodes a callout request, opening it with xkey when the
// server sealed it (the server does whenever the configuration names the
// callout's xkey). A request that is not sealed while xkey is set is
// refused: passwords must not travel in clear.
func OpenRequest(msg *nats.Msg, xkey nkeys.KeyPair) (*CalloutRequest, error) {
	data := msg.Data
	serverKey := msg.Header.Get(serverXKeyHeader)
	switch {
	case serverKey != "" && xkey != nil:
		opened, err := xkey.Open(data, serverKey)
		if err != nil {
			return nil, fmt.Errorf("%w: open: %w", ErrMalformedCallout, err)
		}
		data = opened
	case xkey != nil:
		return nil, fmt.Errorf("%w: not sealed", ErrMalformedCallout)
	}
	claims, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCallout, err)
	}
	return &CalloutRequest{Claims: claims, serverXKey: serverKey}, nil
}

// Grant answers the request with a user in AppAccount named username, with
// perms, until expires (the server drops the connection then, and the
// client reconnects through the callout again).
func (r *CalloutRequest) Grant(issuer, xkey nkeys.KeyPair, username string, perms Permissions, expires time.Time) ([]byte, error) {
	uc := jwt.NewUserClaims(r.Claims.UserNkey)
	uc.Name = username
	uc.Audience = AppAccount
	uc.Expires = expires.Unix()
	uc.Permissions = jwtPermissions(perms)
	uc.Limits.Subs = personMaxSubs
	uc.Limits.Payload = personMaxPayload
	user, err := uc.Encode(issuer)
	if err != nil {
		return nil, fmt.Errorf("encode user claims: %w", err)
	}
	return r.respond(issuer, xkey, user, "")
}

// Refuse answers the request with a refusal. The client sees only
// "Authorization Violation"; reason goes to the server's log.
func (r *CalloutRequest) Refuse(issuer, xkey nkeys.KeyPair, reason string) ([]byte, error) {
	return r.respond(issuer, xkey, "", reason)
}

func (r *CalloutRequest) respond(issuer, xkey nkeys.KeyPair, user, reason string) ([]byte, error) {
	rc := jwt.NewAuthorizationResponseClaims(r.Claims.UserNkey)
	rc.Audience = r.Claims.Server.ID
	rc.Jwt = user
	rc.Error = reason
	token, err := rc.Encode(issuer)
	if err != nil {
		return nil, fmt.Errorf("encode callout response: %w", err)
	}
	if r.serverXKey == "" || xkey == nil {
		return []byte(token), nil
	}
	sealed, err := xkey.Seal([]byte(token), r.serverXKey)
	if err != nil {
		return nil, fmt.Errorf("seal callout response: %w", err)
	}
	return sealed, nil
}

// jwtPermissions turns perms into user-claim permissions. An empty list in
// a user claim would mean "no restriction", so it becomes a deny of all.
func jwtPermissions(p Permissions) jwt.Permissions {
	var out jwt.Permissions
	set := func(dst *jwt.Permission, subjects []string) {
		if len(subjects) == 0 {
			dst.Deny = jwt.StringList{">"}
			return
		}
		dst.Allow = append(jwt.StringList(nil), subjects...)
	}
	set(&out.Pub, p.Publish)
	set(&out.Sub, p.Subscribe)
	if p.AllowResponses {
		out.Resp = &jwt.ResponsePermission{MaxMsgs: 1}
	}
	return out
}

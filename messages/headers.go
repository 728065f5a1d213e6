package messages

// Header names. NATS header names are case-sensitive, so every role spells
// them from here.

// Request headers, the same over HTTP and on NATS: the edge copies them
// from the HTTP request to the NATS request, the sensor role reads them.
const (
	HeaderAuthorization  = "Authorization"
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAuthMode is on the edge's HTTP answer when the token was
	// validated by the JWKS fallback.
	HeaderAuthMode = "X-Auth-Mode"
)

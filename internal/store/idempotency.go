package store

// KeyReused reports whether a submission with fingerprint fp met a stored
// test of the same idempotency key with fingerprint stored that asked for
// something else. Unknown ("") on either side is no evidence: it matches.
func KeyReused(stored, fp string) bool {
	return stored != "" && fp != "" && stored != fp
}

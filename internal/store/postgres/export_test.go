package postgres

// BatchStatement is a statement of the sensor role's batches by test id and
// the statement that begins its transaction, as the store runs them.
type BatchStatement struct{ Begin, SQL string }

// BatchStatements are those statements, for the plan tests.
var BatchStatements = map[string]BatchStatement{
	"begin attempts": {beginAttempts.begin, beginAttempts.sql},
	"renew leases":   {renewLeases.begin, renewLeases.sql},
	"complete tests": {completeTests.begin, completeTests.sql},
}

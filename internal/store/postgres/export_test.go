package postgres

// The statements of the sensor role's batches and the transaction settings
// they run under, for the plan tests.
const (
	BeginAttemptsSQL = beginAttemptsSQL
	RenewLeasesSQL   = renewLeasesSQL
	CompleteTestsSQL = completeTestsSQL
	BeginPinnedPlans = beginPinnedPlans
)

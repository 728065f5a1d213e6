package bench

import "errors"

// ErrIncomplete means some accepted tests were not completed within the
// wait: the report says how many. It breaks the promise that an accepted
// test always ends, so `sensorhub bench` exits non-zero on it.
var ErrIncomplete = errors.New("accepted tests not completed")

// ErrLogin means the bench could not get a token from the edge.
var ErrLogin = errors.New("log in")

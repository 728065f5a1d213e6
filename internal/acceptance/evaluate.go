package acceptance

import (
	"fmt"
	"math"
	"strconv"

	"sensorhub/messages"
)

// Check names, in the order Evaluate reports them. The accuracy check is
// present only when a reference value is given.
const (
	CheckCount    = "count"
	CheckRange    = "range"
	CheckSpike    = "spike"
	CheckNoise    = "noise"
	CheckDrift    = "drift"
	CheckAccuracy = "accuracy"
)

// MinEvaluableReadings is the fewest readings that can pass: noise, drift
// and spikes are all about the difference between successive readings.
const MinEvaluableReadings = 2

// scaleAbove is the magnitude past which summarize works on readings scaled
// down by a power of two: squares and sums of values up to 1e100 cannot
// overflow even for MaxReadings of them, and below it no scaling means no
// rounding at all for ordinary sensor values.
const scaleAbove = 1e100

// Evaluation is the outcome of judging one series of readings against a
// sensor spec. Its JSON names are those of the same fields in
// messages.TestRecord, so the processor can copy it into the record.
type Evaluation struct {
	// Source is messages.SourceSubmitted; the caller sets
	// messages.SourceSimulated when the readings came from Simulate.
	Source  string           `json:"source,omitempty"`
	Unit    string           `json:"unit,omitempty"`
	Verdict string           `json:"verdict,omitempty"` // messages.VerdictPass or VerdictFail
	Checks  []messages.Check `json:"checks,omitempty"`
	Stats   messages.Stats   `json:"stats"`
}

// Evaluate judges readings taken every intervalMS milliseconds (the spec's
// interval, or messages.DefaultIntervalMS, when not positive) against spec,
// and against reference when it is not nil. The verdict is pass iff every
// check passed.
//
// Standard deviations are population ones (divided by n, not n-1): the
// readings are the whole acquisition being judged, and a two-reading series
// then has a defined noise instead of a division by zero.
//
// Evaluate never panics and every number it returns is finite, so the
// result always marshals to JSON: readings that are NaN or infinite count
// as out of range and are left out of the statistics (the submission path
// refuses them earlier; this is the last line of defence), and values that
// would overflow are clamped to ±math.MaxFloat64.
func Evaluate(spec messages.SensorSpec, readings []float64, intervalMS int, reference *float64) Evaluation {
	if intervalMS <= 0 {
		intervalMS = spec.IntervalMS
	}
	if intervalMS <= 0 {
		intervalMS = messages.DefaultIntervalMS
	}
	sum := summarize(readings, spec, intervalMS)
	ev := Evaluation{
		Source: messages.SourceSubmitted,
		Unit:   spec.Unit,
		Stats:  sum.stats,
		Checks: make([]messages.Check, 0, 6),
	}
	ev.Checks = append(ev.Checks,
		countCheck(sum),
		rangeCheck(spec, sum),
		spikeCheck(spec, sum),
		noiseCheck(spec, sum),
		driftCheck(spec, sum),
	)
	if reference != nil {
		c, refErr := accuracyCheck(spec, sum, *reference)
		ev.Checks = append(ev.Checks, c)
		ev.Stats.ReferenceError = refErr
	}
	ev.Verdict = messages.VerdictPass
	for _, c := range ev.Checks {
		if !c.Passed {
			ev.Verdict = messages.VerdictFail
			break
		}
	}
	return ev
}

// seriesSummary is messages.Stats plus what the checks need beyond it.
type seriesSummary struct {
	stats       messages.Stats
	finite      int     // readings that are finite numbers
	nonFinite   int     // readings that are NaN or infinite
	largestStep float64 // largest |step| between successive finite readings
}

// summarize computes the statistics in three passes over the readings,
// without allocating. Overflow is avoided rather than detected: when the
// largest magnitude is huge, every value is scaled by a power of two (which
// is exact) into [-1, 1] before any sum or square, and the results are
// scaled back and clamped at the end.
func summarize(readings []float64, spec messages.SensorSpec, intervalMS int) seriesSummary {
	s := seriesSummary{stats: messages.Stats{Count: len(readings)}}

	// Pass 1, in the readings' own scale: extent, range, steps.
	var (
		lo, hi   = math.Inf(1), math.Inf(-1)
		idxSum   float64
		prev     float64
		havePrev bool
		first    float64
	)
	for i, v := range readings {
		if !isFinite(v) {
			s.nonFinite++
			continue
		}
		// Written as a negation so that a NaN limit counts every reading
		// as out of range instead of none.
		if !(v >= spec.Min && v <= spec.Max) {
			s.stats.OutOfRange++
		}
		if havePrev {
			step := math.Abs(v - prev) // may be +Inf, which is a spike
			if !(step <= spec.MaxStep) {
				s.stats.Spikes++
			}
			s.largestStep = max(s.largestStep, step)
		} else {
			first = v
		}
		lo, hi = min(lo, v), max(hi, v)
		idxSum += float64(i)
		prev, havePrev = v, true
		s.finite++
	}
	s.stats.OutOfRange += s.nonFinite
	s.largestStep = clampFinite(s.largestStep)
	if s.finite == 0 {
		return s
	}
	s.stats.Min, s.stats.Max = lo, hi

	exp := 0
	if m := max(math.Abs(lo), math.Abs(hi)); m > scaleAbove {
		_, exp = math.Frexp(m)
	}
	n := float64(s.finite)

	// Pass 2: the mean, accumulated as offsets from the minimum so that a
	// constant series has exactly its value as mean and a large common
	// offset costs no precision.
	slo, shi := math.Ldexp(lo, -exp), math.Ldexp(hi, -exp)
	var offsets float64
	for _, v := range readings {
		if isFinite(v) {
			offsets += math.Ldexp(v, -exp) - slo
		}
	}
	mean := min(max(slo+offsets/n, slo), shi)
	// The mean of successive differences telescopes to (last-first)/(n-1).
	var diffMean float64
	if s.finite > 1 {
		diffMean = (math.Ldexp(prev, -exp) - math.Ldexp(first, -exp)) / (n - 1)
	}

	// Pass 3: deviations from the mean, from the mean difference, and the
	// least-squares slope against the reading's index (t_i = i*interval).
	idxMean := idxSum / n
	var sumSq, diffSq, sxx, sxy, prevY float64
	havePrev = false
	for i, v := range readings {
		if !isFinite(v) {
			continue
		}
		y := math.Ldexp(v, -exp)
		dev := y - mean
		sumSq += dev * dev
		x := float64(i) - idxMean
		sxx += x * x
		sxy += x * dev
		if havePrev {
			d := (y - prevY) - diffMean
			diffSq += d * d
		}
		prevY, havePrev = y, true
	}

	s.stats.Mean = clampFinite(math.Ldexp(mean, exp))
	s.stats.StdDev = clampFinite(math.Ldexp(math.Sqrt(sumSq/n), exp))
	if s.finite > 1 {
		s.stats.Noise = clampFinite(math.Ldexp(math.Sqrt(diffSq/(n-1)), exp))
	}
	if sxx > 0 {
		perMinute := sxy / sxx * (60_000 / float64(intervalMS))
		s.stats.DriftPerMinute = clampFinite(math.Ldexp(perMinute, exp))
	}
	return s
}

func countCheck(s seriesSummary) messages.Check {
	c := messages.Check{
		Name:   CheckCount,
		Passed: s.stats.Count >= MinEvaluableReadings,
		Value:  float64(s.stats.Count),
		Limit:  MinEvaluableReadings,
	}
	if c.Passed {
		c.Detail = fmt.Sprintf("%d readings", s.stats.Count)
	} else {
		c.Detail = fmt.Sprintf("%d readings; at least %d are needed to judge spikes, noise and drift",
			s.stats.Count, MinEvaluableReadings)
	}
	return c
}

func rangeCheck(spec messages.SensorSpec, s seriesSummary) messages.Check {
	c := messages.Check{
		Name:   CheckRange,
		Passed: s.stats.OutOfRange == 0,
		Value:  float64(s.stats.OutOfRange),
		Limit:  0,
	}
	bounds := fmt.Sprintf("[%s, %s] %s", formatNum(spec.Min), formatNum(spec.Max), spec.Unit)
	switch {
	case s.stats.Count == 0:
		c.Detail = "no readings to check against " + bounds
	case c.Passed:
		c.Detail = fmt.Sprintf("all %d readings within %s", s.stats.Count, bounds)
	case s.nonFinite > 0:
		c.Detail = fmt.Sprintf("%d of %d readings outside %s (%d not finite numbers)",
			s.stats.OutOfRange, s.stats.Count, bounds, s.nonFinite)
	default:
		c.Detail = fmt.Sprintf("%d of %d readings outside %s", s.stats.OutOfRange, s.stats.Count, bounds)
	}
	return c
}

func spikeCheck(spec messages.SensorSpec, s seriesSummary) messages.Check {
	c := messages.Check{
		Name:   CheckSpike,
		Passed: s.stats.Spikes == 0,
		Value:  s.largestStep,
		Limit:  clampFinite(spec.MaxStep),
	}
	if c.Passed {
		c.Detail = fmt.Sprintf("largest step %s, limit %s", formatQty(c.Value, spec.Unit), formatQty(c.Limit, spec.Unit))
	} else {
		c.Detail = fmt.Sprintf("%d steps larger than %s, the largest %s",
			s.stats.Spikes, formatQty(c.Limit, spec.Unit), formatQty(c.Value, spec.Unit))
	}
	return c
}

func noiseCheck(spec messages.SensorSpec, s seriesSummary) messages.Check {
	c := messages.Check{
		Name:  CheckNoise,
		Value: s.stats.Noise,
		Limit: clampFinite(spec.MaxNoise),
	}
	c.Passed = c.Value <= spec.MaxNoise
	c.Detail = fmt.Sprintf("stddev of successive differences %s, limit %s%s",
		formatQty(c.Value, spec.Unit), formatQty(c.Limit, spec.Unit), exceededNote(c.Passed))
	return c
}

func driftCheck(spec messages.SensorSpec, s seriesSummary) messages.Check {
	c := messages.Check{
		Name:  CheckDrift,
		Value: math.Abs(s.stats.DriftPerMinute),
		Limit: clampFinite(spec.MaxDrift),
	}
	c.Passed = c.Value <= spec.MaxDrift
	perMin := spec.Unit + "/min"
	c.Detail = fmt.Sprintf("drift %s, limit ±%s%s",
		formatQty(s.stats.DriftPerMinute, perMin), formatQty(c.Limit, perMin), exceededNote(c.Passed))
	return c
}

// accuracyCheck compares the mean with the reference and returns the check
// with the reference error for the stats (nil when there is none to give).
func accuracyCheck(spec messages.SensorSpec, s seriesSummary, reference float64) (messages.Check, *float64) {
	c := messages.Check{Name: CheckAccuracy, Limit: clampFinite(spec.Accuracy)}
	switch {
	case math.IsNaN(reference):
		c.Detail = "the reference is not a number"
		return c, nil
	case s.finite == 0:
		c.Detail = "no readings to compare with the reference"
		return c, nil
	}
	refErr := clampFinite(s.stats.Mean - reference)
	c.Value = math.Abs(refErr)
	c.Passed = c.Value <= spec.Accuracy
	c.Detail = fmt.Sprintf("mean %s minus the reference %s is %s, limit ±%s%s",
		formatQty(s.stats.Mean, spec.Unit), formatQty(clampFinite(reference), spec.Unit),
		formatQty(refErr, spec.Unit), formatQty(c.Limit, spec.Unit), exceededNote(c.Passed))
	return c, &refErr
}

func exceededNote(passed bool) string {
	if passed {
		return ""
	}
	return " (exceeded)"
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// clampFinite maps a value onto the finite floats, because encoding/json
// refuses NaN and infinities and one such value would lose the whole record.
func clampFinite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v > math.MaxFloat64:
		return math.MaxFloat64
	case v < -math.MaxFloat64:
		return -math.MaxFloat64
	}
	return v
}

// num formats a number for a detail string: short, and exact for the
// values a catalogue or a sensor usually has.
func formatNum(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func formatQty(v float64, unit string) string { return formatNum(v) + " " + unit }

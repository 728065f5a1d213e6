package acceptance

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"

	"sensorhub/messages"
)

// simFaultShare is the share of test ids whose simulated acquisition has a
// fault, so that simulated verdicts vary the way a test bench's do.
const simFaultShare = 0.2

// defaultSimReadings is used when a spec does not say how many readings a
// simulated acquisition has.
const defaultSimReadings = 60

// simFault is the kind of fault a simulated acquisition carries.
type simFault int

const (
	simFaultNone       simFault = iota
	simFaultSpike               // one reading jumps by several MaxStep
	simFaultOutOfRange          // a few readings stuck beyond the valid range
	simFaultNoise               // noise a few times MaxNoise
	simFaultDrift               // drift a few times MaxDrift
	simFaultKinds               // count of the kinds above, not a fault
)

func (f simFault) String() string {
	switch f {
	case simFaultNone:
		return "none"
	case simFaultSpike:
		return "spike"
	case simFaultOutOfRange:
		return "out_of_range"
	case simFaultNoise:
		return "noise"
	case simFaultDrift:
		return "drift"
	}
	return "unknown"
}

// Simulate produces the readings of an acquisition by a sensor of the
// spec's type, and the interval between them in milliseconds. It is
// deterministic for a test id, so that a test re-processed after a crash
// gets the same readings and the same verdict. A healthy series is the
// nominal value with a small offset, noise and drift; for about a fifth of
// the ids it carries a fault (a spike, readings out of range, excessive
// noise or drift). The caller marks the result as messages.SourceSimulated.
func Simulate(spec messages.SensorSpec, testID string) (readings []float64, intervalMS int) {
	readings, intervalMS, _ = simulateAcquisition(spec, testID)
	return readings, intervalMS
}

// simulateAcquisition is Simulate that also says which fault it injected,
// so the tests can check that every fault decides the verdict.
func simulateAcquisition(spec messages.SensorSpec, testID string) ([]float64, int, simFault) {
	intervalMS := spec.IntervalMS
	if intervalMS < messages.MinIntervalMS || intervalMS > messages.MaxIntervalMS {
		intervalMS = messages.DefaultIntervalMS
	}
	n := spec.SimReadings
	if n < MinEvaluableReadings {
		n = defaultSimReadings
	}
	n = min(n, messages.MaxReadings)
	rng := simRand(spec.Type, testID)

	fault := simFaultNone
	if rng.Float64() < simFaultShare {
		fault = simFault(1 + rng.IntN(int(simFaultKinds)-1))
	}
	// A healthy sensor: an offset within half its accuracy, noise whose
	// successive differences stay near a third of MaxNoise at most, and a
	// drift within a third of MaxDrift.
	offset := uniformSymmetric(rng) * 0.5 * spec.Accuracy
	sigma := (0.1 + 0.15*rng.Float64()) * spec.MaxNoise
	drift := uniformSymmetric(rng) * 0.3 * spec.MaxDrift
	switch fault {
	case simFaultNoise:
		// Successive differences of independent noise have sqrt(2) times
		// its deviation: aim them at two to three times MaxNoise.
		sigma = (2 + rng.Float64()) * spec.MaxNoise / math.Sqrt2
	case simFaultDrift:
		drift = math.Copysign((2+2*rng.Float64())*spec.MaxDrift, uniformSymmetric(rng))
	}

	// Drift is centred on the middle reading so the mean stays near the
	// nominal value whatever the slope.
	minutesPerReading := float64(intervalMS) / 60_000
	centre := float64(n-1) / 2
	readings := make([]float64, n)
	for i := range readings {
		readings[i] = spec.Nominal + offset +
			drift*(float64(i)-centre)*minutesPerReading +
			sigma*rng.NormFloat64()
	}

	switch fault {
	case simFaultSpike:
		i := n - 1
		if n > 2 {
			i = 1 + rng.IntN(n-2)
		}
		jump := (2 + 2*rng.Float64()) * spec.MaxStep
		if readings[i]+jump > spec.Max {
			jump = -jump
		}
		readings[i] += jump
	case simFaultOutOfRange:
		// A sensor that saturates or loses its bus reads a fixed level
		// beyond its range for a few samples.
		k := 1 + rng.IntN(min(5, n))
		start := rng.IntN(n - k + 1)
		span := spec.Max - spec.Min
		level := spec.Max + (0.01+0.09*rng.Float64())*span
		if rng.IntN(2) == 0 {
			level = spec.Min - (0.01+0.09*rng.Float64())*span
		}
		for j := start; j < start+k; j++ {
			readings[j] = level
		}
	}

	quantize(readings, spec.MaxNoise)
	return readings, intervalMS, fault
}

// simRand seeds a generator from the test id (and the type, so two types
// never share a series), hashed so that ids that differ in one character,
// as time-ordered UUIDs do, still get unrelated streams.
func simRand(sensorType, testID string) *rand.Rand {
	h := sha256.New()
	h.Write([]byte(sensorType))
	h.Write([]byte{0})
	h.Write([]byte(testID))
	sum := h.Sum(nil)
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))
}

// symmetric returns a uniform value in [-1, 1).
func uniformSymmetric(rng *rand.Rand) float64 { return 2*rng.Float64() - 1 }

// quantize rounds readings to the resolution a real sensor of that noise
// level reports (a decade below MaxNoise), so that simulated records look
// like real ones rather than carrying seventeen digits. A resolution below
// one is applied by dividing by a power of ten, which gives the nearest
// float to the decimal (22.47, not 22.470000000000002).
func quantize(readings []float64, maxNoise float64) {
	if !(maxNoise > 0) || math.IsInf(maxNoise, 0) {
		return
	}
	decimals := -int(math.Floor(math.Log10(maxNoise / 10)))
	if decimals > 0 {
		decimals = min(decimals, 15)
		p := math.Pow10(decimals)
		for i, v := range readings {
			readings[i] = math.Round(v*p) / p
		}
		return
	}
	res := math.Pow10(-decimals)
	for i, v := range readings {
		readings[i] = math.Round(v/res) * res
	}
}

package acceptance

import "sensorhub/messages"

// catalogueSpecs are the sensor types the role accepts. The limits are
// chosen so that a healthy sensor passes with a wide margin (its spikes,
// noise and drift stay well under a third of the limit) while each kind of
// fault the simulator injects clearly breaks one of them: MaxStep is about
// six to eight times MaxNoise, so that ordinary noise is never taken for a
// spike, and MaxDrift is an order of magnitude above the slope that noise
// alone produces over one simulated acquisition.
var catalogueSpecs = []messages.SensorSpec{
	{
		Type:        "temperature",
		Description: "Air temperature, industrial digital sensor (-40 to 125 °C)",
		Unit:        "°C",
		Min:         -40,
		Max:         125,
		MaxStep:     1.0,
		MaxNoise:    0.15,
		MaxDrift:    0.2,
		Accuracy:    0.5,
		Nominal:     22.5,
		IntervalMS:  1000,
		SimReadings: 60,
	},
	{
		Type:        "humidity",
		Description: "Relative humidity, capacitive sensor (0 to 100 %RH)",
		Unit:        "%RH",
		Min:         0,
		Max:         100,
		MaxStep:     5,
		MaxNoise:    0.8,
		MaxDrift:    1.0,
		Accuracy:    3,
		Nominal:     45,
		IntervalMS:  1000,
		SimReadings: 60,
	},
	{
		Type:        "pressure",
		Description: "Barometric pressure, MEMS sensor (300 to 1100 hPa)",
		Unit:        "hPa",
		Min:         300,
		Max:         1100,
		MaxStep:     1.0,
		MaxNoise:    0.12,
		// Weather moves pressure by about 1 hPa an hour; 0.1 hPa a minute
		// is already a storm front or a leaking enclosure.
		MaxDrift:    0.1,
		Accuracy:    1.0,
		Nominal:     1013.25,
		IntervalMS:  1000,
		SimReadings: 60,
	},
	{
		Type:        "co2",
		Description: "Carbon dioxide concentration, NDIR sensor (0 to 5000 ppm)",
		Unit:        "ppm",
		Min:         0,
		Max:         5000,
		MaxStep:     150,
		MaxNoise:    25,
		MaxDrift:    30,
		Accuracy:    50,
		Nominal:     650,
		// NDIR sensors need about two seconds per measurement.
		IntervalMS:  2000,
		SimReadings: 60,
	},
	{
		Type:        "vibration",
		Description: "Vibration velocity RMS, machine condition sensor (0 to 50 mm/s)",
		Unit:        "mm/s",
		Min:         0,
		Max:         50,
		MaxStep:     2.0,
		MaxNoise:    0.3,
		MaxDrift:    0.5,
		Accuracy:    0.25,
		// 2.8 mm/s is a healthy small machine in ISO 10816 terms.
		Nominal:     2.8,
		IntervalMS:  500,
		SimReadings: 120,
	},
	{
		Type:        "light",
		Description: "Illuminance, ambient light sensor (0 to 100000 lux)",
		Unit:        "lux",
		Min:         0,
		Max:         100000,
		MaxStep:     100,
		MaxNoise:    15,
		MaxDrift:    20,
		Accuracy:    25,
		// A lit office.
		Nominal:     500,
		IntervalMS:  1000,
		SimReadings: 60,
	},
}

// Catalogue returns the sensor types in a stable order. The slice is a
// copy, so a caller may sort or change it without touching the catalogue.
func Catalogue() []messages.SensorSpec {
	return append([]messages.SensorSpec(nil), catalogueSpecs...)
}

// LookupSpec returns the spec of a sensor type and whether the type is in
// the catalogue.
func LookupSpec(sensorType string) (messages.SensorSpec, bool) {
	for _, s := range catalogueSpecs {
		if s.Type == sensorType {
			return s, true
		}
	}
	return messages.SensorSpec{}, false
}

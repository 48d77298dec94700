//go:build race

package meter

// raceEnabled reports whether the test binary runs under the race detector.
const raceEnabled = true

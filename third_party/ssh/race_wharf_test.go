//go:build race

package ssh

// raceEnabled: the race detector makes sync.Pool drop a share of what is put back, so the
// allocation bounds do not hold.
const raceEnabled = true

//go:build !race

package digit

const raceEnabled = false

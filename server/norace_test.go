//go:build !race

package server

const raceNote = "without the race detector"

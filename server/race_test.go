//go:build race

package server

const raceNote = "under the race detector, which makes goroutines and allocations larger"

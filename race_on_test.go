//go:build race

package main

// raceBuild: the race detector makes memory figures several times larger.
const raceBuild = true

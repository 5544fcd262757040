//go:build !race

package stripewebhook_test

const raceEnabled = false

package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// Where the command reads what must not be in its arguments, which every
// user of the machine sees (ps, /proc).
const (
	secretEnv = "STRIPE_WEBHOOK_SECRET" // the endpoint's signing secret, as the example server reads it
	queueEnv  = "STRIPEWEBHOOK_QUEUE"   // the application's queue URL, which may hold a password
)

// secretFlags adds -secret and -secret-file to fs.
func secretFlags(fs *flag.FlagSet) (secret, file *string) {
	secret = fs.String("secret", "", "the endpoint's signing secret, whsec_… (better in "+secretEnv+": a flag is visible to every user of the machine)")
	file = fs.String("secret-file", "", "read the endpoint's signing secret from this `file`'s first line")
	return secret, file
}

// endpointSecret returns the endpoint's signing secret: from -secret-file
// (the file's first line), else STRIPE_WEBHOOK_SECRET, else -secret, which
// works with a warning.
func endpointSecret(flagValue, file string, getenv func(string) string, stderr io.Writer) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("-secret-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSpace(line), nil
	case flagValue != "":
		fmt.Fprintf(stderr, "warning: -secret is visible to every user of this machine (ps); set %s or use -secret-file\n", secretEnv)
		return flagValue, nil
	}
	return getenv(secretEnv), nil
}

// queueURL returns the queue's URL: -queue, with a warning when it holds
// a password, else STRIPEWEBHOOK_QUEUE.
func queueURL(flagValue string, getenv func(string) string, stderr io.Writer) string {
	if flagValue == "" {
		return getenv(queueEnv)
	}
	if u, err := url.Parse(flagValue); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			fmt.Fprintf(stderr, "warning: the password in -queue is visible to every user of this machine (ps); set %s instead\n", queueEnv)
		}
	}
	return flagValue
}

module github.com/stripewebhook/stripewebhook/examples

go 1.24.0

require (
	github.com/stripe/stripe-go/v82 v82.5.1
	github.com/stripewebhook/stripewebhook v0.0.0
)

replace github.com/stripewebhook/stripewebhook => ../

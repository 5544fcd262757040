module github.com/stripewebhook/stripewebhook/bench

go 1.26

require (
	github.com/buger/jsonparser v1.6.1
	github.com/go-json-experiment/json v0.0.0-20260820222146-c27c302e5fc3
	github.com/stripewebhook/stripewebhook v0.0.0
)

require github.com/stripe/stripe-go/v82 v82.5.1

replace github.com/stripewebhook/stripewebhook => ../

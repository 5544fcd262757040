module github.com/stripewebhook/stripewebhook/lambdawebhook

go 1.26.0

require (
	github.com/aws/aws-lambda-go v1.55.1
	github.com/stripewebhook/stripewebhook v0.1.0
)

require github.com/stripe/stripe-go/v82 v82.5.1 // indirect

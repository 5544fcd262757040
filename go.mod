module github.com/stripewebhook/stripewebhook

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/stripe/stripe-go/v82 v82.5.1
)

require go.yaml.in/yaml/v3 v3.0.5

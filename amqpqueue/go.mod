module github.com/stripewebhook/stripewebhook/amqpqueue

go 1.26.0

require github.com/stripewebhook/stripewebhook v0.1.0

require (
	github.com/rabbitmq/amqp091-go v1.16.0
	github.com/stripe/stripe-go/v82 v82.5.1
)

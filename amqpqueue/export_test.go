package amqpqueue

var DelayBucket = delayBucket

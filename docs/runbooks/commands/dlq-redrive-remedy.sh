# Redrive to the source queue, ten messages a second, once the fix is deployed and idempotency is confirmed.
aws sqs start-message-move-task --source-arn arn:aws:sqs:eu-west-2:111122223333:fasterpay-accept-dlq --destination-arn arn:aws:sqs:eu-west-2:111122223333:fasterpay-accept --max-number-of-messages-per-second 10
# Watch it: Status RUNNING then COMPLETED, ApproximateNumberOfMessagesMoved = the DLQ count.
aws sqs list-message-move-tasks --source-arn arn:aws:sqs:eu-west-2:111122223333:fasterpay-accept-dlq --max-results 1
# Rollback: stop a redrive that fails again (messages already moved stay in the source queue).
aws sqs cancel-message-move-task --task-handle eyJ0YXNrSWQiOiJkYzE2OTUxYS0yOTg4LTQ1OEXAMPLE

# 1. The alarm: state and the reason CloudWatch gives (expect ALARM with the datapoint that breached).
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-accept-dlq-not-empty --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
# 2. How many dead letters, and are messages still arriving? (expect ApproximateNumberOfMessages = the alarm's count)
aws sqs get-queue-attributes --queue-url https://sqs.eu-west-2.amazonaws.com/111122223333/fasterpay-accept-dlq --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible --output table
# 3. Is the source queue healthy? (expect ApproximateNumberOfMessages near 0 and maxReceiveCount 3 in RedrivePolicy)
aws sqs get-queue-attributes --queue-url https://sqs.eu-west-2.amazonaws.com/111122223333/fasterpay-accept --attribute-names ApproximateNumberOfMessages RedrivePolicy --output json
# 4. Peek at up to ten dead letters without keeping them (visibility 0): one poison body, or many payments failed by one fault?
aws sqs receive-message --queue-url https://sqs.eu-west-2.amazonaws.com/111122223333/fasterpay-accept-dlq --max-number-of-messages 10 --visibility-timeout 0 --message-system-attribute-names ApproximateReceiveCount SentTimestamp --output json
# 5. The handler's reason for each failure (the log line names the message id and the error class).
aws logs filter-log-events --log-group-name /aws/lambda/fasterpay-accept --filter-pattern '"dead-letter"' --start-time 1767225600000 --max-items 20
# 6. The event source mapping: Enabled, and which queue it reads.
aws lambda list-event-source-mappings --function-name fasterpay-accept --query 'EventSourceMappings[].[UUID,State,EventSourceArn]' --output table

# 1. The alarm: WriteThrottleEvents on the ledger table.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-ledger-write-throttles --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
# 2. Throttled writes per minute (expect 0; a hot item shows a steady count while total capacity is low).
aws cloudwatch get-metric-statistics --namespace AWS/DynamoDB --metric-name WriteThrottleEvents --dimensions Name=TableName,Value=fasterpay-ledger --statistics Sum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z
# 3. Is Contributor Insights on for the table? (it names the most throttled partition keys)
aws dynamodb describe-contributor-insights --table-name fasterpay-ledger --output json
# 4. The hot account's shard count (BAL#<account>#<n> items; 1 means one item takes every credit).
aws dynamodb get-item --table-name fasterpay-ledger --key '{"pk":{"S":"ACCT#merchant-001"}}' --consistent-read --projection-expression 'shards' --output json
# 5. The clear queue's oldest message: throttled postings are retried by redelivery, so age rises, nothing is lost.
aws cloudwatch get-metric-statistics --namespace AWS/SQS --metric-name ApproximateAgeOfOldestMessage --dimensions Name=QueueName,Value=fasterpay-clear --statistics Maximum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z

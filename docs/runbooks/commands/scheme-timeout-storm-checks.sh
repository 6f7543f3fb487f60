# 1. The alarm (SchemeTimeout / SchemeSubmission over 5 minutes): which window, which value.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-scheme-timeout-storm --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
# 2. The series the timeouts are published under (dimension Stage; the rail is in the log lines, check 5).
aws cloudwatch list-metrics --namespace FasterPay/Payments --metric-name SchemeTimeout --output table
# 3. Timeouts per minute (expect 0 in normal running; a storm shows tens a minute).
aws cloudwatch get-metric-statistics --namespace FasterPay/Payments --metric-name SchemeTimeout --dimensions Name=Stage,Value=prod --statistics Sum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z
# 4. The clear queue backs up while the clear function waits on the scheme (expect under 30 s).
aws cloudwatch get-metric-statistics --namespace AWS/SQS --metric-name ApproximateAgeOfOldestMessage --dimensions Name=QueueName,Value=fasterpay-clear --statistics Maximum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z
# 5. The refusals the clear function wrote: AB06 (Faster Payments, 15 s) or AB05 (SEPA Instant, 10 s), with their UETRs.
aws logs filter-log-events --log-group-name /aws/lambda/fasterpay-clear --filter-pattern '"AB06"' --start-time 1767232800000 --max-items 50
# 6. Did any clearing batch reach the clear DLQ? (expect 0; keep any there until the scheme is back)
aws sqs get-queue-attributes --queue-url https://sqs.eu-west-2.amazonaws.com/111122223333/fasterpay-clear-dlq --attribute-names ApproximateNumberOfMessages --output text

# 1. Which alarm: the anomaly band on the watched caller (support-desk), or the static ceiling per caller (any caller, new ones included).
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-detokenize-anomaly fasterpay-prod-detokenize-ceiling --query 'MetricAlarms[].[AlarmName,StateValue,StateReason]' --output table
# 2. Every caller that detokenized in the last 3 hours (expect the callers you know; a new one is a finding by itself).
aws cloudwatch list-metrics --namespace FasterPay/Payments --metric-name Detokenize --recently-active PT3H --query 'Metrics[].Dimensions' --output json
# 3. Detokenize per caller per minute (the ceiling alarm's own Metrics Insights query), newest first: which caller, since when, how many.
#    Run from the repository root (file:// paths are relative to the current directory).
aws cloudwatch get-metric-data --metric-data-queries file://docs/runbooks/commands/detokenize-spike-by-caller.json --start-time 2026-01-01T00:00:00Z --end-time 2026-01-01T03:00:00Z --scan-by TimestampDescending --query 'MetricDataResults[].[Label,Timestamps[0],Values[0]]' --output table
# 4. The watched caller a day earlier, the same hours: its normal rate, against which the spike is measured.
aws cloudwatch get-metric-statistics --namespace FasterPay/Payments --metric-name Detokenize --dimensions Name=Stage,Value=prod Name=caller,Value=support-desk --statistics Sum --period 60 --start-time 2025-12-31T00:00:00Z --end-time 2025-12-31T03:00:00Z
# 5. CloudTrail: who assumed the detokenizer role, when, from where, under which session name.
aws cloudtrail lookup-events --lookup-attributes AttributeKey=ResourceName,AttributeValue=arn:aws:iam::111122223333:role/fasterpay-detokenizer --start-time 2026-01-01T00:00:00Z --end-time 2026-01-01T03:00:00Z --query 'Events[].[EventTime,EventName,Username]' --output table
# 6. CloudTrail: what that session did (kms Decrypt outside the vault bypasses its audit trail).
aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=support-desk --start-time 2026-01-01T00:00:00Z --end-time 2026-01-01T03:00:00Z --query 'Events[].[EventTime,EventSource,EventName]' --output table
# 7. The vault's audit records of the day for that identity: every detokenize, allowed or refused, with its purpose, tenant and token.
aws dynamodb query --table-name fasterpay-vault-audit --key-condition-expression 'pk = :day' --filter-expression '#p = :who AND #a = :detokenize' --expression-attribute-names '{"#p":"principal","#a":"action"}' --expression-attribute-values '{":day":{"S":"AUDIT#2026-01-01"},":who":{"S":"arn:aws:sts::111122223333:assumed-role/fasterpay-detokenizer/support-desk"},":detokenize":{"S":"detokenize"}}' --query 'Items[].[sk.S,result.S,purpose.S,tenant.S,reference.S]' --output table

# 1. The FinOps alarm: KMS symmetric requests per second as a share of the regional quota.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-kms-request-quota --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
# 2. The quota itself (Cryptographic operations (symmetric) request rate) for this account and region.
aws service-quotas list-service-quotas --service-code kms --query 'Quotas[?contains(QuotaName, `symmetric`)].[QuotaName,QuotaCode,Value]' --output table
# 3. GenerateMac calls per minute (the token keys; the cache keeps them near zero per payment).
aws cloudwatch get-metric-statistics --namespace AWS/Usage --metric-name CallCount --dimensions Name=Service,Value=KMS Name=Type,Value=API Name=Resource,Value=GenerateMac Name=Class,Value=None --statistics Sum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z
# 4. Who calls KMS: by event name and caller (a new role, or a burst of cold starts after a deploy?).
aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventSource,AttributeValue=kms.amazonaws.com --max-results 50 --query 'Events[].[EventTime,EventName,Username]' --output table
# 5. Cold starts: the accept function's concurrency (a jump means many new execution environments, each with an empty cache).
aws cloudwatch get-metric-statistics --namespace AWS/Lambda --metric-name ConcurrentExecutions --dimensions Name=FunctionName,Value=fasterpay-accept --statistics Maximum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z

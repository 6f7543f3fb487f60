# 1. Which SLO and which row: the six burn-rate composites (fast and medium page, slow is a ticket) and when each changed.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-authorisation-fast-burn fasterpay-prod-authorisation-medium-burn fasterpay-prod-authorisation-slow-burn fasterpay-prod-critical-path-fast-burn fasterpay-prod-critical-path-medium-burn fasterpay-prod-critical-path-slow-burn --alarm-types CompositeAlarm --query 'CompositeAlarms[].[AlarmName,StateValue,StateUpdatedTimestamp]' --output table
# 2. Every alarm in ALARM now: a cause alarm beside the burn (scheme timeouts, DLQ, ledger throttles, KMS, replication lag) names the runbook to follow.
aws cloudwatch describe-alarms --state-value ALARM --alarm-types MetricAlarm CompositeAlarm --query '[MetricAlarms[].[AlarmName,StateUpdatedTimestamp], CompositeAlarms[].[AlarmName,StateUpdatedTimestamp]]' --output text
# 3. The operations dashboard (open it in the console; this prints its body): burn rates against 14.4x / 6x / 1x, latency, queues, scheme timeouts.
aws cloudwatch get-dashboard --dashboard-name fasterpay-prod-operations --query DashboardBody --output text
# 4. Recent deploys: when each function's code last changed (expect nothing in the hour before the burn), its published versions and the live alias if you use one, and the pipeline stack's events.
aws lambda get-function-configuration --function-name fasterpay-accept --query '[LastModified,CodeSha256,Version]' --output text
aws lambda get-function-configuration --function-name fasterpay-clear --query '[LastModified,CodeSha256,Version]' --output text
aws lambda list-versions-by-function --function-name fasterpay-accept --query 'Versions[].[Version,LastModified,CodeSha256]' --output table
aws lambda get-alias --function-name fasterpay-accept --name live --query '[FunctionVersion,Description]' --output text
aws cloudformation describe-stack-events --stack-name fasterpay-pipeline --max-items 20 --query 'StackEvents[].[Timestamp,LogicalResourceId,ResourceStatus]' --output table
# 5. The burn per window (5 min, 1 h, 6 h) for both SLOs, computed as the alarms compute it; newest value first. Under 1x keeps within budget; 14.4x pages.
#    Run from the repository root (file:// paths are relative to the current directory).
aws cloudwatch get-metric-data --metric-data-queries file://docs/runbooks/commands/slo-burn-rates.json --start-time 2025-12-31T21:00:00Z --end-time 2026-01-01T03:00:00Z --scan-by TimestampDescending --query 'MetricDataResults[].[Label,Timestamps[0],Values[0]]' --output table
# 6. The 30-day budget already spent (the burn over 30 days: 0.5 means half the budget is gone; escalate at 0.5).
aws cloudwatch get-metric-data --metric-data-queries file://docs/runbooks/commands/slo-burn-budget.json --start-time 2025-12-02T03:00:00Z --end-time 2026-01-01T03:00:00Z --query 'MetricDataResults[].[Label,Values[0]]' --output table

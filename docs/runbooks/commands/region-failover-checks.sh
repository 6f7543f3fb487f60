# 1. The replication alarm, in the primary region.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-ledger-replication-lag --region eu-west-2 --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
# 2. Replication lag to the secondary (its last value before the failure is the RPO you report).
aws cloudwatch get-metric-statistics --namespace AWS/DynamoDB --metric-name ReplicationLatency --dimensions Name=TableName,Value=fasterpay-ledger Name=ReceivingRegion,Value=eu-west-1 --statistics Average Maximum --period 60 --start-time 2026-01-01T02:00:00Z --end-time 2026-01-01T03:00:00Z --region eu-west-2
# 3. AWS Health: open events for the primary region (the Health API answers in us-east-1).
aws health describe-events --filter regions=eu-west-2,eventStatusCodes=open --region us-east-1
# 4. The routing controls as the data plane sees them (ask a cluster endpoint, not the control plane).
aws route53-recovery-cluster get-routing-control-state --routing-control-arn arn:aws:route53-recovery-control::111122223333:controlpanel/0123456789abcdef0123456789abcdef/routingcontrol/0a1b2c3d4e5f6a7b --endpoint-url https://host-aaaaaa.us-west-2.example.route53-recovery-cluster.amazonaws.com/v1 --region us-west-2
# 5. The secondary's replica is ACTIVE and inside AllowedRegions.
aws dynamodb describe-table --table-name fasterpay-ledger --region eu-west-1 --query 'Table.Replicas[].[RegionName,ReplicaStatus]' --output table

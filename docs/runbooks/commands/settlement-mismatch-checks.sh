# 1. The alarm: ReconciliationMismatches above 0 after the reconciliation job.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-settlement-mismatch --query 'MetricAlarms[0].[StateValue,StateReason]' --output text
# 2. The cycle's state (expect SETTLED) and its stored report (positions per rail, currency and participant).
aws dynamodb get-item --table-name fasterpay-settlement --key '{"pk":{"S":"C000001"},"sk":{"S":"STATE"}}' --consistent-read --output json
aws dynamodb get-item --table-name fasterpay-settlement --key '{"pk":{"S":"C000001"},"sk":{"S":"REPORT"}}' --consistent-read --query 'Item.report.S' --output text
# 3. The booked entries the report must equal (the record; the report is derived from them).
aws dynamodb query --table-name fasterpay-settlement --key-condition-expression 'pk = :c AND begins_with(sk, :e)' --expression-attribute-values '{":c":{"S":"C000001"},":e":{"S":"ENTRY#"}}' --consistent-read --query 'Items[].e.S' --output json
# 4. What the ledger settled for the rail and currency (must equal the entries' total).
aws dynamodb get-item --table-name fasterpay-ledger --key '{"pk":{"S":"TRANSFER#settle:C000001:sepa_inst:EUR"}}' --consistent-read --query 'Item.amount_minor.N' --output text
# 5. Recent changes: deploys of the pipeline stack, and the settlement table's point-in-time recovery window.
aws cloudformation describe-stack-events --stack-name fasterpay-pipeline --max-items 20 --query 'StackEvents[].[Timestamp,LogicalResourceId,ResourceStatus]' --output table
aws dynamodb describe-continuous-backups --table-name fasterpay-settlement --query 'ContinuousBackupsDescription.PointInTimeRecoveryDescription' --output json

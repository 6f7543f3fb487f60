# Before the rebuild: note the point-in-time recovery window (EarliestRestorableDateTime, LatestRestorableDateTime).
aws dynamodb describe-continuous-backups --table-name fasterpay-settlement --output json
# After the rebuild: the report now equals the entries (compare with check 3).
aws dynamodb get-item --table-name fasterpay-settlement --key '{"pk":{"S":"C000001"},"sk":{"S":"REPORT"}}' --consistent-read --query 'Item.report.S' --output text
# Rollback: restore the settlement table as it was before the rebuild into a new table, and compare.
aws dynamodb restore-table-to-point-in-time --source-table-name fasterpay-settlement --target-table-name fasterpay-settlement-before-rebuild --restore-date-time 2026-01-01T02:55:00Z

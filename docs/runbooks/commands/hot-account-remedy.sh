# Turn on Contributor Insights to name the hot keys (safe; billed per event).
aws dynamodb update-contributor-insights --table-name fasterpay-ledger --contributor-insights-action ENABLE
# Fewer concurrent clear batches: fewer writes racing for one item while the account is resharded.
aws lambda update-event-source-mapping --uuid a1b2c3d4-5678-90ab-cdef-11111EXAMPLE --scaling-config MaximumConcurrency=5
# Rollback: the template's concurrency, and Contributor Insights off after the incident.
aws lambda update-event-source-mapping --uuid a1b2c3d4-5678-90ab-cdef-11111EXAMPLE --scaling-config MaximumConcurrency=10
aws dynamodb update-contributor-insights --table-name fasterpay-ledger --contributor-insights-action DISABLE

# Find the clear function's event source mapping (its UUID).
aws lambda list-event-source-mappings --function-name fasterpay-clear --query 'EventSourceMappings[].[UUID,ScalingConfig.MaximumConcurrency]' --output table
# Lower the clear function's concurrency while the scheme is slow: fewer invocations blocked on the scheme.
aws lambda update-event-source-mapping --uuid a1b2c3d4-5678-90ab-cdef-11111EXAMPLE --scaling-config MaximumConcurrency=5
# Rollback: back to the template's setting once the burn rate is under 1x.
aws lambda update-event-source-mapping --uuid a1b2c3d4-5678-90ab-cdef-11111EXAMPLE --scaling-config MaximumConcurrency=10

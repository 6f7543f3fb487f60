# Cap the accept function's scale-out: fewer new environments at once, fewer cold-start KMS calls.
aws lambda update-event-source-mapping --uuid a1b2c3d4-5678-90ab-cdef-22222EXAMPLE --scaling-config MaximumConcurrency=20
# Ask for more quota if the steady rate, not a burst, is near it (use the QuotaCode check 2 printed).
aws service-quotas request-service-quota-increase --service-code kms --quota-code L-6E3AF000 --desired-value 20000
# Rollback: the template's concurrency.
aws lambda update-event-source-mapping --uuid a1b2c3d4-5678-90ab-cdef-22222EXAMPLE --scaling-config MaximumConcurrency=50

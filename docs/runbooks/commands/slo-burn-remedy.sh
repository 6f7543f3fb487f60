# A cause alarm is in ALARM (check 2): follow its runbook; nothing below.
# No cause alarm and a deploy preceded the burn: roll back the function the deploy changed (fasterpay-accept or fasterpay-clear).
# With published versions behind a "live" alias that the event source mapping invokes: point the alias at the previous version (check 4 lists them).
aws lambda update-alias --function-name fasterpay-accept --name live --function-version 41
# With the pipeline stack as shipped (the mappings invoke the unqualified function, no versions): redeploy the previous package.
# This drifts from the stack: set CodeS3Key to the previous key in the stack's next update, or the next deploy brings the fault back.
aws lambda update-function-code --function-name fasterpay-accept --s3-bucket fasterpay-artifacts-111122223333 --s3-key fasterpay-lambda-previous.zip
# Confirm: the 5-minute burn under 1x within 10 minutes (check 5), and the composites back to OK.
aws cloudwatch describe-alarms --alarm-names fasterpay-prod-authorisation-fast-burn fasterpay-prod-critical-path-fast-burn --alarm-types CompositeAlarm --query 'CompositeAlarms[].[AlarmName,StateValue]' --output text
# Rollback of the rollback: the version that was live before (the burn did not fall, or the old code cannot read what the new code wrote).
aws lambda update-alias --function-name fasterpay-accept --name live --function-version 42
aws lambda update-function-code --function-name fasterpay-accept --s3-bucket fasterpay-artifacts-111122223333 --s3-key fasterpay-lambda.zip

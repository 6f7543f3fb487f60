# Run from the repository root (file:// paths are relative to the current directory); the security lead authorises each step.
# 1. Contain: deny the vault's detokenize path to the role (kms:Decrypt on the vault key, reads of the vault table). Audit writes stay allowed: each refused attempt is recorded as denied-iam.
aws iam put-role-policy --role-name fasterpay-detokenizer --policy-name incident-deny-detokenize --policy-document file://docs/runbooks/commands/detokenize-spike-deny.json
# 2. Revoke the sessions issued before now (the console's "Revoke active sessions"): set aws:TokenIssueTime in the file to the current time (UTC) first.
aws iam put-role-policy --role-name fasterpay-detokenizer --policy-name AWSRevokeOlderSessions --policy-document file://docs/runbooks/commands/detokenize-spike-revoke-sessions.json
# 3. Confirm both are in place; then the caller's Detokenize falls to 0 and the audit shows denied-iam (checks 3 and 7).
aws iam list-role-policies --role-name fasterpay-detokenizer --output text
# Rollback (the security lead decides, once the owner has confirmed the need and the credentials are rotated): lift the deny. Keep AWSRevokeOlderSessions: it refuses only sessions older than its time.
aws iam delete-role-policy --role-name fasterpay-detokenizer --policy-name incident-deny-detokenize

"""Security evidence: break-glass access with fresh MFA and an incident id, and a trust-policy evaluator.

The template ``cloudformation/security.yaml`` holds the rest of the evidence (VPC endpoints with policies,
the CloudTrail trail into an Object Lock bucket, the break-glass role and its permissions boundary), and
``compliance/scp-allowed-regions.json`` the example SCP that keeps the accounts in the allowed regions.

Copy ``security/`` alone: it needs the standard library, and boto3 clients passed in (``__copy_with__``).
"""

from .breakglass import (
    INCIDENT_ID_PATTERN,
    SUPPORTED_OPERATORS,
    BreakGlassRefusedError,
    TrustDecision,
    UnsupportedPolicyError,
    assume_break_glass,
    evaluate_trust_policy,
    request_context,
)

#: Folders and modules to copy with this folder: none (boto3 clients are passed in).
__copy_with__: tuple[str, ...] = ()

__all__ = [
    "INCIDENT_ID_PATTERN",
    "SUPPORTED_OPERATORS",
    "BreakGlassRefusedError",
    "TrustDecision",
    "UnsupportedPolicyError",
    "assume_break_glass",
    "evaluate_trust_policy",
    "request_context",
]

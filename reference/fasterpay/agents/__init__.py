"""Queue agents, stream processing and an LLM routing agent for the exceptions the rules cannot decide.

* :mod:`.scaling` and :mod:`.batch`: SQS consumers that scale with their backlog (Little's law), partial batch
  failures and poison-message isolation.
* :mod:`.stream`: payment status events on Kinesis Data Streams, partitioned by account, consumed with
  KCL-style leases and checkpoints in DynamoDB, replayable, with exactly-once downstream effects.
* :mod:`.prompts` and :mod:`.llm`: a routing agent that asks a model (Bedrock Converse, one forced tool) for
  a decision on tokenised prompts, validates the answer against a JSON schema and an allow-list, falls back
  to "hold for review", stores the prompt encrypted and audits every decision.

Copy ``agents/`` with the folders ``__copy_with__`` names: the agent uses the audit log and the
personal-data guard, and the routing rules of the pipeline. ``scaling.py``, ``batch.py`` and ``stream.py``
need nothing but boto3 and the standard library. The stand-in model, the load shapes, the queue
simulation and the drills are in ``simulations/``: nothing here depends on them.
"""

from .batch import BatchOutcome, MalformedEventError, PoisonRecordError, process_batch, process_batch_outcome
from .llm import (
    ALLOWED_ACTIONS,
    ALLOWED_REASON_CODES,
    DEFAULT_MODEL_ID,
    FALLBACK_REASONS,
    AgentDecision,
    AgentError,
    AnswerRejectedError,
    DynamoDbPromptStore,
    GuardrailSettings,
    InMemoryPromptStore,
    InvocationBudget,
    KmsPromptStore,
    PromptStore,
    RoutingAgent,
    validate_tool_answer,
)
from .prompts import (
    CASE_KINDS,
    DECIDE_TOOL,
    DECISION_SCHEMA,
    MAX_REMITTANCE_CHARS,
    RATIONALE_CODES,
    REMOVED,
    SYSTEM_PROMPT,
    ExceptionCase,
    PromptRefusedError,
    RuleContext,
    RuleContextError,
    SanctionsNearMiss,
    ScrubbedText,
    build_converse_request,
    prompt_sha256,
    scrub_remittance,
)
from .scaling import BacklogScalingPolicy, InvalidScalingPolicyError, backlog_metric_math
from .stream import (
    CRASH_POINTS,
    MAX_PUT_RECORDS,
    MAX_PUT_RECORDS_BYTES,
    SHARD_END,
    STATUS_CODES,
    TRIM_HORIZON,
    InvalidStatusEventError,
    Lease,
    LeaseLostError,
    LeaseTable,
    PoisonRecord,
    PollReport,
    PublishFailedError,
    PublishReport,
    StatusEvent,
    StatusEventPublisher,
    StreamConsumer,
    StreamError,
    create_lease_table,
    create_processed_table,
    list_shards,
    records_behind,
)

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ("audit", "observability", "vault", "pipeline", "iso20022", "ledger", "idempotency",
                                  "aws.py", "cloudformation")

__all__ = [
    "ALLOWED_ACTIONS", "ALLOWED_REASON_CODES", "CASE_KINDS", "CRASH_POINTS", "DECIDE_TOOL", "DECISION_SCHEMA",
    "DEFAULT_MODEL_ID", "FALLBACK_REASONS", "MAX_PUT_RECORDS", "MAX_PUT_RECORDS_BYTES", "MAX_REMITTANCE_CHARS",
    "RATIONALE_CODES", "REMOVED", "SHARD_END", "STATUS_CODES", "SYSTEM_PROMPT", "TRIM_HORIZON",
    "AgentDecision", "AgentError", "AnswerRejectedError", "BacklogScalingPolicy", "BatchOutcome",
    "DynamoDbPromptStore", "ExceptionCase", "GuardrailSettings", "InMemoryPromptStore", "InvalidScalingPolicyError",
    "InvalidStatusEventError", "InvocationBudget", "KmsPromptStore", "Lease", "LeaseLostError", "LeaseTable",
    "MalformedEventError", "PoisonRecord", "PoisonRecordError", "PollReport", "PromptRefusedError", "PromptStore",
    "PublishFailedError", "PublishReport", "RoutingAgent", "RuleContext", "RuleContextError", "SanctionsNearMiss",
    "ScrubbedText", "StatusEvent", "StatusEventPublisher", "StreamConsumer", "StreamError", "backlog_metric_math",
    "build_converse_request", "create_lease_table", "create_processed_table", "list_shards", "process_batch",
    "process_batch_outcome", "prompt_sha256", "records_behind", "scrub_remittance", "validate_tool_answer",
]

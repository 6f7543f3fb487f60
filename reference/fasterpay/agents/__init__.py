"""Queue agents, stream processing and an LLM routing agent for the exceptions the rules cannot decide.

* :mod:`.scaling` and :mod:`.batch`: SQS consumers that scale with their backlog (Little's law), partial batch
  failures and poison-message isolation.
* :mod:`.stream`: payment status events on Kinesis Data Streams, partitioned by account, consumed with
  KCL-style leases and checkpoints in DynamoDB, replayable, with exactly-once downstream effects.
* :mod:`.llm`: a routing agent that asks a model (Bedrock Converse) for a decision on tokenised prompts,
  validates the answer against a schema and an allow-list, falls back to "hold for review", and audits it.
"""

"""The composition root: one place that wires a pipeline stage from its configuration.

Lambda (``lambdas.py``), the local runner and the benches all call :func:`bootstrap`; nothing else
builds clients, tables or rules. Configuration comes from environment variables on Lambda
(:meth:`PipelineConfig.from_environment`) or is passed in by a test or bench.

Examples:
    >>> config = PipelineConfig.from_environment({
    ...     "FASTERPAY_PAYMENTS_TABLE": "fp-payments", "FASTERPAY_SETTLEMENT_TABLE": "fp-settlement",
    ...     "FASTERPAY_LEDGER_TABLE": "fp-ledger", "FASTERPAY_LEDGER_OUTBOX_TABLE": "fp-ledger-outbox",
    ...     "FASTERPAY_VAULT_TABLE": "fp-vault", "FASTERPAY_VAULT_AUDIT_TABLE": "fp-vault-audit",
    ...     "FASTERPAY_VAULT_KEY": "alias/fp-vault", "FASTERPAY_MAC_KEY": "alias/fp-mac",
    ...     "FASTERPAY_ACCEPT_QUEUE_URL": "https://sqs/1/fp-accept", "FASTERPAY_CLEAR_QUEUE_URL": "https://sqs/1/fp-clear",
    ...     "FASTERPAY_ANSWERS_QUEUE_URL": "https://sqs/1/fp-answers",
    ...     "FASTERPAY_SCHEME_GATEWAY": "my_bank.fps:connector"})
    >>> config.tenant, config.queues["clear"], config.scheme_gateway
    ('bank-a', 'https://sqs/1/fp-clear', 'my_bank.fps:connector')
"""

from __future__ import annotations

import importlib
import contextvars
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..ledger import Ledger, LedgerTables

from .gateway import SchemeGateway
from .routing import RoutingRules, default_routing_rules
from .screening import FraudRules, SanctionsScreen, load_sanctions_list
from .settlement import SettlementBook
from .stages import NoTelemetry, PipelineContext, Telemetry
from .store import PaymentStore

__all__ = ["ConfigurationError", "PipelineConfig", "bootstrap", "cycle_clock", "load_scheme_gateway", "thread_pool"]

_REQUIRED = {
    "payments_table": "FASTERPAY_PAYMENTS_TABLE",
    "settlement_table": "FASTERPAY_SETTLEMENT_TABLE",
    "ledger_table": "FASTERPAY_LEDGER_TABLE",
    "ledger_outbox_table": "FASTERPAY_LEDGER_OUTBOX_TABLE",
    "vault_table": "FASTERPAY_VAULT_TABLE",
    "vault_audit_table": "FASTERPAY_VAULT_AUDIT_TABLE",
    "vault_key": "FASTERPAY_VAULT_KEY",
    "mac_key": "FASTERPAY_MAC_KEY",
    "accept_queue_url": "FASTERPAY_ACCEPT_QUEUE_URL",
    "clear_queue_url": "FASTERPAY_CLEAR_QUEUE_URL",
    "answers_queue_url": "FASTERPAY_ANSWERS_QUEUE_URL",
}
#: The scheme connector, ``module:factory``: required on Lambda; a test or bench passes its gateway instead.
SCHEME_GATEWAY_ENV = "FASTERPAY_SCHEME_GATEWAY"


class ConfigurationError(ValueError):
    """A required setting is missing or empty; set the named environment variable (the template does)."""


@dataclass(frozen=True)
class PipelineConfig:
    """Names of everything a stage uses; the templates set each as an environment variable."""

    payments_table: str
    settlement_table: str
    ledger_table: str
    ledger_outbox_table: str
    vault_table: str
    vault_audit_table: str
    vault_key: str
    mac_key: str
    accept_queue_url: str
    clear_queue_url: str
    answers_queue_url: str
    tenant: str = "bank-a"
    cycle_seconds: int = 3600
    concurrency: int = 10
    scheme_gateway: str = ""  # module:factory of the scheme connector (FASTERPAY_SCHEME_GATEWAY)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PipelineConfig:
        """Read the settings (what the template's ``Environment`` sets); every missing one is named in one error."""
        missing = [name for name in (*_REQUIRED.values(), SCHEME_GATEWAY_ENV) if not environ.get(name)]
        if missing:
            raise ConfigurationError(f"missing settings: {', '.join(missing)}")
        values = {field_name: environ[name] for field_name, name in _REQUIRED.items()}
        return cls(**values, tenant=environ.get("FASTERPAY_TENANT", "bank-a"),
                   cycle_seconds=int(environ.get("FASTERPAY_CYCLE_SECONDS", "3600")),
                   concurrency=int(environ.get("FASTERPAY_CONCURRENCY", "10")),
                   scheme_gateway=environ[SCHEME_GATEWAY_ENV])

    @property
    def queues(self) -> dict[str, str]:
        """Queue URLs by handler name (and the answers queue)."""
        return {"accept": self.accept_queue_url, "clear": self.clear_queue_url, "answers": self.answers_queue_url}


def cycle_clock(clock: Callable[[], float], seconds: int) -> Callable[[], str]:
    """Settlement cycles of ``seconds`` each, named by their start time (UTC).

    Examples:
        >>> cycle_clock(lambda: 1_800_000_123.0, 3600)()
        'C20270115T0800'
    """
    def cycle() -> str:
        start = int(clock()) // seconds * seconds
        return "C" + datetime.fromtimestamp(start, UTC).strftime("%Y%m%dT%H%M")
    return cycle


def load_scheme_gateway(spec: str) -> SchemeGateway:
    """Import and call the scheme connector's factory named ``module:factory``.

    Raises:
        ConfigurationError: ``spec`` is not ``module:factory``, the module is not in the package, or the
            factory does not return a :class:`~.gateway.SchemeGateway`.

    Examples:
        >>> try:
        ...     load_scheme_gateway("no_such_connector:make")
        ... except ConfigurationError as exc:
        ...     print(exc)
        FASTERPAY_SCHEME_GATEWAY names no_such_connector:make, which cannot be imported (No module named \
'no_such_connector'): package the connector with the function
    """
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ConfigurationError(f"{SCHEME_GATEWAY_ENV} must name your scheme connector as module:factory, "
                                 f"not {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{SCHEME_GATEWAY_ENV} names {spec}, which cannot be imported ({exc}): "
                                 f"package the connector with the function") from exc
    gateway = factory()
    if not isinstance(gateway, SchemeGateway):
        raise ConfigurationError(f"{spec} returned {type(gateway).__name__}, which has no submit(payments, "
                                 f"*, time_limits): it must return a SchemeGateway")
    return gateway


def thread_pool(workers: int) -> Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]:
    """Run a batch's per-payment writes concurrently (boto3 clients are thread-safe); for AWS, not moto.

    Each task runs in a copy of the caller's context (``contextvars``), so the current trace span
    follows the work into the pool: a per-payment span is a child of the handler's span.

    Examples:
        >>> thread_pool(4)(lambda x: x * 2, [1, 2, 3])
        [2, 4, 6]
    """
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fasterpay")

    def run(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        caller = contextvars.copy_context()
        return list(executor.map(lambda item: caller.copy().run(fn, item), items))
    return run


@dataclass
class Clients:
    """The three AWS clients a stage needs (built by the caller: never at import time)."""

    sqs: Any
    dynamodb: Any
    kms: Any
    extra: dict[str, Any] = field(default_factory=dict)


def bootstrap(config: PipelineConfig, *, clients: Clients, gateway: SchemeGateway,
              telemetry: Telemetry | None = None, clock: Callable[[], float] = time.time,
              cycle: Callable[[], str] | None = None, routing: RoutingRules | None = None,
              sanctions: Sequence[str] | None = None, parallel: Any = None) -> PipelineContext:
    """Wire a pipeline stage: store, settlement book, ledger, vault, screening, routing, ports.

    Raises:
        ConfigurationError: the configuration names nothing usable.
    """
    from ..vault import DynamoDbAuditLog, Vault, VaultPolicy

    vault = Vault(kms=clients.kms, dynamodb=clients.extra.get("vault_dynamodb", clients.dynamodb),
                  table_name=config.vault_table,
                  key_id=config.vault_key, mac_key_id=config.mac_key,
                  audit=DynamoDbAuditLog(clients.dynamodb, config.vault_audit_table),
                  policy=VaultPolicy.of(grants=[], erasers=[]),  # the pipeline tokenises; it never detokenises
                  sts=clients.extra.get("sts"))  # the identity its audit records name (default: from the KMS client)
    vault.warm(tenant=config.tenant, data_classes=["iban", "account_number", "name"])  # the init phase's KMS calls
    names = list(load_sanctions_list() if sanctions is None else sanctions)
    screen = SanctionsScreen.from_names(vault, names, tenant=config.tenant)
    return PipelineContext(
        sqs=clients.sqs,
        store=PaymentStore(clients.dynamodb, config.payments_table, config.ledger_table),
        book=SettlementBook(clients.dynamodb, config.settlement_table),
        vault=vault, gateway=gateway, queues=config.queues,
        routing=routing or default_routing_rules(), screen=screen, clock=clock,
        cycle=cycle or cycle_clock(clock, config.cycle_seconds),
        telemetry=telemetry or NoTelemetry(), fraud=FraudRules(), tenant=config.tenant,
        **({"parallel": parallel} if parallel is not None else {}),
    )


def settlement_ledger(config: PipelineConfig, dynamodb: Any) -> Ledger:
    """The ledger the settlement job posts to (its own role in production)."""
    return Ledger(dynamodb, LedgerTables(ledger=config.ledger_table, outbox=config.ledger_outbox_table,
                                         idempotency="", consumer=""))

"""Lambda entry points: ``fasterpay.pipeline.lambdas.accept`` and ``.clear`` (the template's ``Handler``).

The context is built once per execution environment (cold start) by the composition root,
:func:`~.bootstrap.bootstrap`, from the environment variables the template sets; boto3 clients are
created inside the function, never at import time. The scheme connector is named by
``FASTERPAY_SCHEME_GATEWAY`` (``module:factory``, a callable returning a :class:`~.gateway.SchemeGateway`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["accept", "clear", "context_from_environment"]

_CONTEXT: Any = None


def context_from_environment(environ: Mapping[str, str], *, session: Any = None) -> Any:
    """Build the pipeline context as a cold start does (also called by the deploy test)."""
    import boto3

    from .bootstrap import Clients, ConfigurationError, PipelineConfig, bootstrap, thread_pool

    config = PipelineConfig.from_environment(environ)
    factory = environ.get("FASTERPAY_SCHEME_GATEWAY", "")
    module, _, name = factory.partition(":")
    if not module or not name:
        raise ConfigurationError("FASTERPAY_SCHEME_GATEWAY must name your scheme connector as module:factory")
    gateway = getattr(importlib.import_module(module), name)()
    session = session or boto3.session.Session()
    clients = Clients(sqs=session.client("sqs"), dynamodb=session.client("dynamodb"), kms=session.client("kms"))
    return bootstrap(config, clients=clients, gateway=gateway, parallel=thread_pool(config.concurrency))


def _handler(name: str) -> Any:
    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        global _CONTEXT
        from .stages import make_handlers

        if _CONTEXT is None:
            _CONTEXT = context_from_environment(os.environ)
        return make_handlers(_CONTEXT)[name](event, context)
    handle.__name__ = name
    return handle


accept = _handler("accept")
clear = _handler("clear")

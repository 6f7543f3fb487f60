"""Lambda entry points: ``fasterpay.pipeline.lambdas.accept`` and ``.clear`` (the template's ``Handler``).

The context is built once per execution environment (cold start) by the composition root,
:func:`~.bootstrap.bootstrap`, from the environment variables the template sets
(:meth:`~.bootstrap.PipelineConfig.from_environment`); boto3 clients are created inside the function,
never at import time. The scheme connector is named by ``FASTERPAY_SCHEME_GATEWAY`` (``module:factory``,
a callable returning a :class:`~.gateway.SchemeGateway`) and ships in the same package
(``python -m simulations.package --include your_connector.py``).

``tests/test_lambda_deploy.py`` runs both handlers with the Environment a deployed stack gives them, and
``tests/test_lambda_package.py`` runs them from the built zip in an interpreter that sees nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["accept", "clear", "context_from_environment"]

_CONTEXT: Any = None


def context_from_environment(environ: Mapping[str, str], *, session: Any = None) -> Any:
    """Build the pipeline context as a cold start does: settings, scheme connector, clients, then bootstrap.

    Raises:
        ConfigurationError: a setting is missing, or the scheme connector cannot be loaded.

    Examples:
        >>> ctx = context_from_environment(os.environ)  # doctest: +SKIP
    """
    import boto3

    from .bootstrap import Clients, PipelineConfig, bootstrap, load_scheme_gateway, thread_pool

    config = PipelineConfig.from_environment(environ)
    gateway = load_scheme_gateway(config.scheme_gateway)
    session = session or boto3.session.Session()
    clients = Clients(sqs=session.client("sqs"), dynamodb=session.client("dynamodb"), kms=session.client("kms"),
                      extra={"sts": session.client("sts")})  # who the vault's audit records name
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

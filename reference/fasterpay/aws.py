"""boto3 sessions and clients: moto by default, a real AWS account only on explicit opt-in.

Three backends share one interface, :class:`AwsEnvironment`:

* ``moto`` (default): ``moto.mock_aws`` in-process; no account, no network.
* ``moto-server``: ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a free port; real HTTP
  between the SDK and the mock. Clients made with :meth:`AwsEnvironment.client` get its
  ``endpoint_url``.
* ``aws``: a real account, with credentials from the standard AWS settings. Refused unless the
  environment variable ``FASTERPAY_ALLOW_REAL_AWS`` is exactly ``1``.

In both moto backends the boto3 session carries fake credentials set explicitly, so profile or
environment credentials are never read and nothing can reach a real account by accident.
moto is imported lazily, inside :meth:`AwsEnvironment.__enter__`, so copying this module into a
service that talks only to AWS does not drag moto along.
"""

from __future__ import annotations

import json
import logging
import math
import os
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

__all__ = [
    "ALLOW_REAL_AWS_ENV",
    "BACKEND_ENV",
    "DEFAULT_REGION",
    "REGION_ENV",
    "AwsEnvironment",
    "Backend",
    "Credentials",
    "EnvironmentNotOpenError",
    "RealAwsNotAllowedError",
    "StackDeployError",
    "assume_role",
    "delete_stack",
    "deploy_stack",
    "open_environment",
]

DEFAULT_REGION = "eu-west-2"
BACKEND_ENV = "FASTERPAY_BACKEND"
REGION_ENV = "FASTERPAY_REGION"
ALLOW_REAL_AWS_ENV = "FASTERPAY_ALLOW_REAL_AWS"

_FAKE_ACCESS_KEY_ID = "testing"
_FAKE_SECRET_ACCESS_KEY = "testing"
_TERMINAL_FAILURE_SUFFIXES = ("_FAILED",)
# moto answers IAM denials on JSON-protocol services with a query-style XML body, which botocore
# reads as Error.Code "403". AWS sends JSON with these codes instead.
_MOTO_TO_AWS_JSON_ERROR_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
}


def _moto_cloudformation_kms_tags() -> None:
    """Let moto's CloudFormation create a tagged ``AWS::KMS::Key`` (moto 5.2.5 fails on it).

    CloudFormation tags are ``{Key, Value}``; moto hands them to KMS's own ``create_key``, which reads
    ``{TagKey, TagValue}``, and fails with ``KeyError: 'TagKey'``. The guide's templates put
    cost-allocation tags on every key, so the moto backends translate them. AWS needs nothing.
    """
    from moto.kms.models import Key

    original = Key.__dict__["create_from_cloudformation_json"].__func__
    if getattr(original, "_fasterpay_tags", False):
        return

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties", {})
        if properties.get("Tags"):
            properties = {**properties, "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
                                                 for t in properties["Tags"]]}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    create._fasterpay_tags = True  # type: ignore[attr-defined]
    Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


class Backend(str, Enum):
    """Where AWS calls go."""

    MOTO = "moto"
    MOTO_SERVER = "moto-server"
    AWS = "aws"


class RealAwsNotAllowedError(RuntimeError):
    """The ``aws`` backend was requested without the explicit opt-in."""


class EnvironmentNotOpenError(RuntimeError):
    """An :class:`AwsEnvironment` was used outside its ``with`` block."""


class StackDeployError(RuntimeError):
    """A CloudFormation stack did not reach ``CREATE_COMPLETE``.

    ``failed_events`` holds ``"LogicalId (Type): STATUS: reason"`` lines, oldest first.
    """

    def __init__(
        self, stack_name: str, status: str, reason: str, failed_events: tuple[str, ...] = ()
    ) -> None:
        self.stack_name = stack_name
        self.status = status
        self.reason = reason
        self.failed_events = failed_events
        lines = "".join(f"\n  - {event}" for event in failed_events)
        super().__init__(
            f"Stack {stack_name!r} ended in {status}: {reason}.{lines}\n"
            f"Fix the template or parameters, then remove the stack with "
            f"delete_stack(client, {stack_name!r}) before deploying again."
        )


@dataclass(frozen=True)
class Credentials:
    """Temporary credentials, e.g. from :func:`assume_role`."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


class AwsEnvironment:
    """A boto3 session bound to one backend; use it as a context manager.

    Examples:
        >>> with AwsEnvironment(Backend.MOTO, region="eu-west-2") as env:
        ...     kms = env.client("kms")
        ...     key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    """

    def __init__(self, backend: Backend, *, region: str) -> None:
        if backend is Backend.AWS:
            _require_real_aws_opt_in()
        self.backend = backend
        self.region = region
        self.endpoint_url: str | None = None
        self._session: boto3.Session | None = None
        self._mock: Any = None
        self._server: Any = None
        self._werkzeug_log_level = logging.NOTSET

    @property
    def session(self) -> boto3.Session:
        """The boto3 session (fake credentials on the moto backends)."""
        if self._session is None:
            raise EnvironmentNotOpenError(
                "The environment is not open: use `with open_environment() as env:` "
                "and create clients inside the block."
            )
        return self._session

    def __enter__(self) -> AwsEnvironment:
        if self._session is not None:
            raise RuntimeError("This environment is already open: open a new one instead.")
        if self.backend is Backend.MOTO:
            import moto  # lazy: only the moto backends need it

            _moto_cloudformation_kms_tags()
            self._mock = moto.mock_aws()
            self._mock.start()
            self._session = _fake_session(self.region)
            self._session.events.register("before-parse", _translate_moto_xml_error)
        elif self.backend is Backend.MOTO_SERVER:
            from moto.server import ThreadedMotoServer

            _moto_cloudformation_kms_tags()
            werkzeug_log = logging.getLogger("werkzeug")
            self._werkzeug_log_level = werkzeug_log.level
            werkzeug_log.setLevel(logging.WARNING)  # no line per request on stderr
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            self._session = _fake_session(self.region)
            self._session.events.register("before-parse", _translate_moto_xml_error)
        else:
            self._session = boto3.Session(region_name=self.region)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._mock is not None:
                self._mock.stop()
            if self._server is not None:
                try:
                    self._post_moto_api("reset", b"")
                finally:
                    self._server.stop()
                    logging.getLogger("werkzeug").setLevel(self._werkzeug_log_level)
        finally:
            self._mock = None
            self._server = None
            self._session = None
            self.endpoint_url = None

    def client(
        self,
        service: str,
        *,
        region: str | None = None,
        credentials: Credentials | None = None,
        config: Config | None = None,
    ) -> Any:
        """Create a boto3 client on this backend.

        Examples:
            >>> with open_environment("moto") as env:
            ...     table_names = env.client("dynamodb").list_tables()["TableNames"]
        """
        kwargs: dict[str, Any] = {
            "region_name": region or self.region,
            "endpoint_url": self.endpoint_url,
            "config": config,
        }
        if credentials is not None:
            kwargs.update(
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
            )
        return self.session.client(service, **kwargs)

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Enforce IAM policies inside the block (AWS always does; moto only when asked).

        Set up roles and assume them first: inside the block the session's fake credentials
        are unknown to IAM and are refused. On moto the switch is process-wide (all threads).

        Examples:
            >>> with open_environment("moto") as env, env.iam_enforced():
            ...     pass  # calls here are checked against IAM policies
        """
        self.session  # raises if the environment is not open
        if self.backend is Backend.MOTO:
            from moto.core import enable_iam_authentication

            with enable_iam_authentication():
                yield
        elif self.backend is Backend.MOTO_SERVER:
            previous = json.loads(self._post_moto_api("reset-auth", b"0"))
            try:
                yield
            finally:
                restore = previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
                self._post_moto_api("reset-auth", restore.encode())
        else:
            yield

    def _post_moto_api(self, path: str, data: bytes) -> str:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/{path}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.read().decode()


def open_environment(
    backend: str | Backend | None = None, *, region: str | None = None
) -> AwsEnvironment:
    """Choose a backend (default: env ``FASTERPAY_BACKEND``, else ``moto``) and a region.

    The region is, in order: ``region``, env ``FASTERPAY_REGION``, the AWS settings (``aws``
    backend only), then :data:`DEFAULT_REGION`.

    Examples:
        >>> with open_environment("moto", region="eu-west-2") as env:
        ...     sqs = env.client("sqs")
    """
    chosen = _parse_backend(backend if backend is not None else os.environ.get(BACKEND_ENV, "moto"))
    if chosen is Backend.AWS:
        _require_real_aws_opt_in()
    resolved = region or os.environ.get(REGION_ENV)
    if not resolved and chosen is Backend.AWS:
        resolved = boto3.Session().region_name
    return AwsEnvironment(chosen, region=resolved or DEFAULT_REGION)


def assume_role(sts_client: Any, role_arn: str, session_name: str) -> Credentials:
    """Assume ``role_arn`` and return its temporary credentials.

    Examples:
        >>> creds = assume_role(env.client("sts"), role_arn, "payments-api")  # doctest: +SKIP
        >>> dynamodb = env.client("dynamodb", credentials=creds)  # doctest: +SKIP
    """
    response = sts_client.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
    issued = response["Credentials"]
    return Credentials(
        access_key_id=issued["AccessKeyId"],
        secret_access_key=issued["SecretAccessKey"],
        session_token=issued["SessionToken"],
    )


def deploy_stack(
    cloudformation_client: Any,
    *,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str] | None = None,
    timeout_seconds: float = 1800,
    poll_seconds: int = 5,
) -> dict[str, str]:
    """Create a stack, wait for ``CREATE_COMPLETE`` and return its outputs.

    Raises :class:`StackDeployError` (with the failed resource events) if creation fails or
    does not finish within ``timeout_seconds``.

    Examples:
        >>> outputs = deploy_stack(  # doctest: +SKIP
        ...     cfn, stack_name="fp-ledger", template_body=text)
        >>> outputs["TableName"]  # doctest: +SKIP
        'fp-ledger-postings'
    """
    try:
        created = cloudformation_client.create_stack(
            StackName=stack_name,
            TemplateBody=template_body,
            Parameters=[
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in (parameters or {}).items()
            ],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    except ClientError as error:
        err = error.response.get("Error", {})
        raise StackDeployError(
            stack_name, "NOT_CREATED", f"{err.get('Code')}: {err.get('Message')}"
        ) from error
    stack_id = created["StackId"]
    waiter = cloudformation_client.get_waiter("stack_create_complete")
    max_attempts = max(1, math.ceil(timeout_seconds / poll_seconds))
    try:
        waiter.wait(
            StackName=stack_id,
            WaiterConfig={"Delay": poll_seconds, "MaxAttempts": max_attempts},
        )
    except WaiterError as error:
        stack = cloudformation_client.describe_stacks(StackName=stack_id)["Stacks"][0]
        raise StackDeployError(
            stack_name,
            stack["StackStatus"],
            stack.get("StackStatusReason") or str(error),
            _failed_events(cloudformation_client, stack_id),
        ) from error
    stack = cloudformation_client.describe_stacks(StackName=stack_id)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def delete_stack(
    cloudformation_client: Any, stack_name: str, *, timeout_seconds: float = 1800
) -> None:
    """Delete a stack and wait until it is gone.

    Examples:
        >>> delete_stack(cfn, "fp-ledger")  # doctest: +SKIP
    """
    cloudformation_client.delete_stack(StackName=stack_name)
    cloudformation_client.get_waiter("stack_delete_complete").wait(
        StackName=stack_name,
        WaiterConfig={"Delay": 5, "MaxAttempts": max(1, math.ceil(timeout_seconds / 5))},
    )


def _failed_events(cloudformation_client: Any, stack_id: str) -> tuple[str, ...]:
    events: list[dict[str, Any]] = []
    for page in cloudformation_client.get_paginator("describe_stack_events").paginate(
        StackName=stack_id
    ):
        events.extend(page["StackEvents"])
    failed = [
        event
        for event in reversed(events)  # the API lists newest first
        if str(event.get("ResourceStatus", "")).endswith(_TERMINAL_FAILURE_SUFFIXES)
    ]
    return tuple(
        f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}): "
        f"{event.get('ResourceStatus')}: {event.get('ResourceStatusReason', '')}"
        for event in failed
    )


def _parse_backend(value: str | Backend) -> Backend:
    if isinstance(value, Backend):
        return value
    try:
        return Backend(value.strip().lower())
    except ValueError:
        valid = ", ".join(repr(member.value) for member in Backend)
        raise ValueError(f"Unknown backend {value!r}: use one of {valid}.") from None


def _require_real_aws_opt_in() -> None:
    if os.environ.get(ALLOW_REAL_AWS_ENV) != "1":
        raise RealAwsNotAllowedError(
            f"The 'aws' backend calls a real AWS account and may cost money. "
            f"To allow it, set the environment variable {ALLOW_REAL_AWS_ENV}=1; "
            f"otherwise use backend 'moto' or 'moto-server'."
        )


_SHARED_LOADER: list[Any] = []  # botocore's data loader, shared by the moto sessions (see _fake_session)


def _fake_session(region: str) -> boto3.Session:
    """A session with fake credentials, for the moto backends.

    Every new boto3 session gets its own botocore data loader, which parses the service models and endpoint
    files (JSON, a few MB for DynamoDB) again for the first client of each service: about 0.3 s per session.
    The moto sessions share one loader instead, so each file is parsed once per process; the parsed models
    are read-only to botocore, as they are for every client of one session. A real-AWS session keeps its own.
    """
    import botocore.loaders
    import botocore.session

    if not _SHARED_LOADER:
        _SHARED_LOADER.append(botocore.loaders.create_loader())
    loader = _SHARED_LOADER[0]
    core = botocore.session.get_session()
    core.register_component("data_loader", loader)
    session = boto3.Session(
        aws_access_key_id=_FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=_FAKE_SECRET_ACCESS_KEY,
        aws_session_token=None,
        region_name=region,
        botocore_session=core,
    )
    # boto3 appends its own data folder to the loader's search paths for each session: keep one copy of each
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session



def _translate_moto_xml_error(
    operation_model: Any, response_dict: dict[str, Any], **_: Any
) -> None:
    """Rewrite moto's XML auth errors on JSON-protocol services into the JSON that AWS sends.

    Without this, code written for AWS (``except ... Code == "AccessDeniedException"``) could not
    be exercised on moto. Only auth errors (HTTP 401/403 with an XML body) are touched.
    """
    service_model = operation_model.service_model
    protocol = getattr(service_model, "resolved_protocol", service_model.protocol)
    body = response_dict.get("body")
    if (
        response_dict.get("status_code") not in (401, 403)
        or protocol != "json"
        or service_model.metadata.get("awsQueryCompatible") is not None
        or not isinstance(body, bytes)
        or not body.lstrip().startswith(b"<")
    ):
        return
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return
    code = root.findtext(".//Code")
    if not code:
        return
    response_dict["body"] = json.dumps(
        {
            "__type": _MOTO_TO_AWS_JSON_ERROR_CODES.get(code, code),
            "message": root.findtext(".//Message") or "",
        }
    ).encode()

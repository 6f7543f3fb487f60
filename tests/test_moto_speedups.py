"""The moto speed-ups answer exactly as moto does: same tables, same streams, same errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from botocore.exceptions import ClientError

from simulations import moto_speedups


def _client(service: str = "dynamodb") -> Any:
    return boto3.client(service, region_name="eu-west-2", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _tables(ddb: Any) -> None:
    ddb.create_table(TableName="flat", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.create_table(TableName="ranged", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])


def _action(rng: random.Random) -> dict[str, Any]:
    """One random transaction action over a small key space, so that conditions pass and fail."""
    table = rng.choice(["flat", "ranged"])
    key: dict[str, Any] = {"pk": {"S": f"k{rng.randrange(6)}"}}
    if table == "ranged":
        key["sk"] = {"S": f"s{rng.randrange(3)}"}
    kind = rng.choice(["Put", "Update", "Delete", "ConditionCheck", "BadUpdate"])
    if kind == "Put":
        item = dict(key, n={"N": str(rng.randrange(5))})
        op: dict[str, Any] = {"TableName": table, "Item": item}
        if rng.random() < 0.6:
            op["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": op}
    if kind == "Update":
        return {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET n = :v",
                           "ConditionExpression": "attribute_exists(pk) AND n < :v",
                           "ExpressionAttributeValues": {":v": {"N": str(rng.randrange(5))}}}}
    if kind == "BadUpdate":  # fails inside update_item, after earlier actions were applied
        return {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET n = n + :v",
                           "ExpressionAttributeValues": {":v": {"S": "text"}}}}
    if kind == "Delete":
        return {"Delete": {"TableName": table, "Key": key}}
    return {"ConditionCheck": {"TableName": table, "Key": key, "ConditionExpression": "attribute_exists(pk)"}}


def _run(seed: int, patched: bool) -> tuple[list[Any], dict[str, list[Any]], list[str]]:
    if patched:
        moto_speedups.install()
    else:
        moto_speedups.uninstall()
    rng = random.Random(seed)
    outcomes: list[Any] = []
    with moto.mock_aws():
        ddb = _client()
        _tables(ddb)
        for _ in range(60):
            items = [_action(rng) for _ in range(rng.randint(1, 4))]
            try:
                ddb.transact_write_items(TransactItems=items)
                outcomes.append("ok")
            except ClientError as error:
                outcomes.append((error.response["Error"]["Code"],
                                 [r.get("Code") for r in error.response.get("CancellationReasons", [])]))
        state = {name: sorted(ddb.scan(TableName=name)["Items"], key=repr) for name in ("flat", "ranged")}
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["eu-west-2"].tables["flat"].stream_shard
        records = [repr({k: r.record["dynamodb"].get(k) for k in ("Keys", "NewImage", "OldImage", "SequenceNumber")})
                   + r.record["eventName"] for r in shard.items]
    return outcomes, state, records


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_patched_transactions_answer_as_moto_does(seed: int) -> None:
    try:
        original = _run(seed, patched=False)
        patched = _run(seed, patched=True)
    finally:
        moto_speedups.install()
    assert any(o != "ok" for o in original[0]) and any(o == "ok" for o in original[0])  # both paths exercised
    assert patched == original


def test_a_cancelled_transaction_leaves_no_trace() -> None:
    moto_speedups.install()
    with moto.mock_aws():
        ddb = _client()
        _tables(ddb)
        ddb.put_item(TableName="flat", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        with pytest.raises(ClientError) as caught:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "flat", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :v",
                            "ExpressionAttributeValues": {":v": {"N": "2"}}}},
                {"Put": {"TableName": "flat", "Item": {"pk": {"S": "b"}}}},
                {"ConditionCheck": {"TableName": "ranged", "Key": {"pk": {"S": "x"}, "sk": {"S": "y"}},
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ])
        assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
        assert ddb.get_item(TableName="flat", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
        assert "Item" not in ddb.get_item(TableName="flat", Key={"pk": {"S": "b"}})


def test_queue_attributes_are_computed_once_per_call_and_agree() -> None:
    moto_speedups.install()
    with moto.mock_aws():
        sqs = _client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        moto_speedups.uninstall()
        try:
            before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        finally:
            moto_speedups.install()
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"] == before == {
            "ApproximateNumberOfMessages": "3", "ApproximateNumberOfMessagesNotVisible": "2"}
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert {k: v for k, v in got.items() if "Timestamp" not in k} == {
            k: v for k, v in everything.items() if "Timestamp" not in k}


def _queue_states(sqs: Any) -> list[str]:
    """Queues of every kind, each with visible, in-flight and delayed messages."""
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    urls = [dlq,
            sqs.create_queue(QueueName="redriven", Attributes={
                "RedrivePolicy": f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": "3"}}',
                "Policy": '{"Version": "2012-10-17", "Statement": []}'})["QueueUrl"],
            sqs.create_queue(QueueName="ordered.fifo", Attributes={
                "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"],
            sqs.create_queue(QueueName="sealed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"]]
    for url in urls:
        fifo = url.endswith(".fifo")
        for n in range(7):
            extra: dict[str, Any] = {"MessageGroupId": f"g{n % 2}"} if fifo else {
                "DelaySeconds": 900 if n == 6 else 0}
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", **extra)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=300)
    return urls


def _queue_answers() -> tuple[list[Any], list[list[str]]]:
    """Each attribute alone, in a group and as All, then two receives, on queues of every kind."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
             "ApproximateNumberOfMessagesNotVisible", "DelaySeconds", "MaximumMessageSize",
             "MessageRetentionPeriod", "QueueArn", "Policy", "RedrivePolicy", "ReceiveMessageWaitTimeSeconds",
             "VisibilityTimeout", "SqsManagedSseEnabled", "ContentBasedDeduplication", "DeduplicationScope",
             "FifoQueue", "FifoThroughputLimit", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"]
    asks = [[n] for n in names] + [names[:3] + ["Policy"], ["All"], names]
    with moto.mock_aws():
        sqs = _client("sqs")
        urls = _queue_states(sqs)
        answers = [{k: v for k, v in sqs.get_queue_attributes(QueueUrl=u, AttributeNames=a)
                    .get("Attributes", {}).items() if "Timestamp" not in k} for u in urls for a in asks]
        received = [sorted(m["Body"] for m in sqs.receive_message(QueueUrl=u, MaxNumberOfMessages=10,
                                                                  VisibilityTimeout=300).get("Messages", []))
                    for u in urls for _ in range(2)]
    return answers, received


def test_every_queue_attribute_and_receive_agrees_with_moto() -> None:
    moto_speedups.install()
    got = _queue_answers()
    moto_speedups.uninstall()
    try:
        expected = _queue_answers()
    finally:
        moto_speedups.install()
    assert got == expected
    answers, received = got
    assert {"ApproximateNumberOfMessages": "4", "ApproximateNumberOfMessagesDelayed": "1",
            "ApproximateNumberOfMessagesNotVisible": "2"}.items() <= answers[19].items()  # the first queue, All
    assert received[:2] == [["m2", "m3", "m4", "m5"], []]


def test_sqs_clock_moves_visibility_timeouts_and_only_forwards() -> None:
    moto_speedups.install()
    with moto.mock_aws():
        sqs = _client("sqs")
        url = sqs.create_queue(QueueName="clocked")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="m")
        assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # in flight
        moto_speedups.advance_sqs_clock(30)
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # half the timeout: still in flight
        moto_speedups.advance_sqs_clock(31)
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["m"]
    with pytest.raises(ValueError):
        moto_speedups.advance_sqs_clock(-1)


def test_deleted_receipt_handles_are_forgotten_between_sets_and_messages_are_untouched() -> None:
    """moto keeps every deleted receipt handle; the benches drop them with each table set, so memory stays flat."""
    with moto.mock_aws():
        sqs = _client("sqs")
        url = sqs.create_queue(QueueName="receipts")["QueueUrl"]
        for n in range(4):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=30)["Messages"]
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])  # twice: moto remembers it
        assert moto_speedups.forget_deleted_receipts() >= 3  # the three, and any other queue's of this process
        assert moto_speedups.forget_deleted_receipts() == 0
        with pytest.raises(ClientError):  # forgotten: a late delete of an old receipt is no longer recognised
            sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(left) == 1 and left[0]["Body"] not in {m["Body"] for m in got}


def test_the_caches_pick_and_list_exactly_what_moto_does_through_a_whole_pipeline_run() -> None:
    """Every attribute pick and method listing of a real run (DynamoDB, SQS, KMS, IAM, STS, CloudFormation,
    errors included) is made both ways, by moto's own code and through the caches, and compared."""
    from moto.core import responses
    from moto.core.serialize import AttributePicker

    from fasterpay.aws import open_environment
    from simulations.pipeline_bench import RunSettings, run_pipeline

    moto_speedups.uninstall()
    own_pick, own_names = AttributePicker.__call__, responses.method_names_from_class
    moto_speedups.install_caches()
    cached_pick, cached_names = AttributePicker.__call__, responses.method_names_from_class
    assert cached_pick is not own_pick and cached_names is not own_names
    from moto.core.serialize import BaseJSONSerializer

    # every AttributeValue through the picker here (the one-step path is compared byte for byte below)
    BaseJSONSerializer._serialize_type_structure = moto_speedups._CACHE_ORIGINALS["json_structure"]  # type: ignore[method-assign]
    compared = {"picks": 0, "plain dict picks": 0, "listings": 0}
    differences: list[str] = []

    def both_picks(self: Any, context: Any) -> Any:
        theirs, ours = own_pick(self, context), cached_pick(self, context)
        compared["picks"] += 1
        compared["plain dict picks"] += type(context.obj) is dict
        if not (theirs is ours or theirs == ours):
            differences.append(f"{context.key_path}.{context.key}: moto {theirs!r}, cached {ours!r}")
        return theirs

    def both_listings(clazz: Any) -> list[str]:
        theirs, ours = own_names(clazz), cached_names(clazz)
        compared["listings"] += 1
        if theirs != ours:
            differences.append(f"{clazz.__name__}: {sorted(set(theirs) ^ set(ours))}")
        return theirs

    AttributePicker.__call__ = both_picks  # type: ignore[method-assign]
    responses.method_names_from_class = both_listings  # type: ignore[assignment]
    try:
        with open_environment("moto", region="eu-west-2") as env:
            summary = run_pipeline(env, RunSettings(payments=30, seed=5, duplicate_rate=0.2, poison_messages=1,
                                                    throttle_rate=0.05, crash_rate=0.05), name_prefix="shadow")
    finally:
        AttributePicker.__call__ = cached_pick  # type: ignore[method-assign]
        responses.method_names_from_class = cached_names  # type: ignore[assignment]
        moto_speedups.uninstall()
        moto_speedups.install_caches()  # as the suite runs (tests/conftest.py)
    assert summary.lost == summary.doubled == 0
    assert differences == []
    assert compared["plain dict picks"] > 10_000 and compared["listings"] > 400, compared


def test_the_candidate_cache_stops_growing_once_each_shape_is_seen() -> None:
    """moto makes a picker per response: the cache is keyed by what the candidates depend on, so the same
    calls again add no entry (a cache per picker would grow with every call and never hit across calls)."""
    moto_speedups.install_caches()
    with moto.mock_aws():
        ddb = _client()
        _tables(ddb)

        def calls(n: int) -> None:
            for i in range(n):
                ddb.put_item(TableName="flat", Item={"pk": {"S": f"k{i}"}, "l": {"L": [{"N": "1"}]},
                                                     "m": {"M": {"s": {"S": "x"}}}})
                ddb.get_item(TableName="flat", Key={"pk": {"S": f"k{i}"}})
                ddb.query(TableName="flat", KeyConditionExpression="pk = :k",
                          ExpressionAttributeValues={":k": {"S": f"k{i}"}})

        calls(3)
        seen = len(moto_speedups._CANDIDATES)
        calls(50)
        assert len(moto_speedups._CANDIDATES) == seen > 0


def test_unpatched_is_moto_own_code_and_restores_what_was_installed() -> None:
    from moto.core import responses
    from moto.core.serialize import AttributePicker

    moto_speedups.uninstall()
    own_pick = AttributePicker.__call__
    moto_speedups.install_caches()
    try:
        assert not moto_speedups.installed()
        with moto_speedups.unpatched():
            assert AttributePicker.__call__ is own_pick
        assert AttributePicker.__call__ is not own_pick and not moto_speedups.installed()
        moto_speedups.install()
        with moto_speedups.unpatched():
            assert AttributePicker.__call__ is own_pick and not moto_speedups.installed()
        assert moto_speedups.installed() and responses.method_names_from_class is not None
    finally:
        moto_speedups.uninstall()
        moto_speedups.install_caches()


def test_cached_template_parses_equal_motos_and_a_stack_cannot_change_the_cache() -> None:
    """Every template the project deploys parses to what moto's own parser gives; each caller gets its own copy."""
    from moto.cloudformation.models import Stack as FakeStack

    moto_speedups.install_caches()
    templates = sorted((Path(__file__).resolve().parents[1] / "reference" / "fasterpay" / "cloudformation").glob("*.yaml"))
    assert len(templates) >= 4
    with moto_speedups.unpatched():
        own = {t.name: FakeStack.parse_template(t.read_text(encoding="utf-8")) for t in templates}
    for t in templates:
        body = t.read_text(encoding="utf-8")
        first = FakeStack.parse_template(body)
        assert first == own[t.name], t.name
        first["Resources"].clear()  # what a stack does to its own copy
        assert FakeStack.parse_template(body) == own[t.name], "a caller's change reached the cache"
    assert FakeStack.parse_template('{"Resources": {}}') == {"Resources": {}}  # JSON bodies too


@pytest.mark.parametrize("spec,usage,algorithm", [
    ("ECC_NIST_P256", "SIGN_VERIFY", "ECDSA_SHA_256"),
    ("RSA_2048", "SIGN_VERIFY", "RSASSA_PSS_SHA_256"),
])
def test_kms_key_pairs_are_made_on_first_use_and_sign_and_verify(spec: str, usage: str, algorithm: str) -> None:
    """A key pair is generated only when a call needs it; signing, verifying and the public key then work
    as moto's own (a symmetric key never pays for the RSA pair moto gives it)."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    from moto.kms.models import kms_backends

    moto_speedups.install_caches()
    with moto.mock_aws():
        kms = boto3.client("kms", region_name="eu-west-2")
        symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
        asymmetric = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
        keys = kms_backends["123456789012"]["eu-west-2"].keys
        assert keys[symmetric].private_key._key is None and keys[asymmetric].private_key._key is None
        blob = kms.encrypt(KeyId=symmetric, Plaintext=b"x", EncryptionContext={"a": "b"})["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"x"
        assert keys[symmetric].private_key._key is None
        signature = kms.sign(KeyId=asymmetric, Message=b"m", SigningAlgorithm=algorithm)["Signature"]
        assert kms.verify(KeyId=asymmetric, Message=b"m", Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]
        assert not kms.verify(KeyId=asymmetric, Message=b"n", Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]
        der = kms.get_public_key(KeyId=asymmetric)["PublicKey"]
        assert load_der_public_key(der) is not None and der == keys[asymmetric].private_key.public_key()


_SCALARS = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=12)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-10**12, 10**12)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=8)),
    st.builds(lambda ss: {"SS": sorted(ss)}, st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=3)),
    st.builds(lambda ns: {"NS": sorted(str(n) for n in ns)}, st.sets(st.integers(0, 99), min_size=1, max_size=3)),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.builds(lambda m: {"M": m}, st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3)),
    st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3))), max_leaves=8)
_ITEMS = st.dictionaries(st.text(alphabet="abcdefgh", min_size=1, max_size=5), _VALUES, max_size=5)


def _raw_bodies(items: list[dict[str, Any]]) -> list[bytes]:
    """Every response body of a DynamoDB and Streams workload over ``items``, as moto sent it."""
    bodies: list[bytes] = []
    with moto.mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-2")
        streams = boto3.client("dynamodbstreams", region_name="eu-west-2")
        for client in (ddb, streams):
            client.meta.events.register("before-parse", lambda response_dict, **_: bodies.append(response_dict["body"]))
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        for n, item in enumerate(items):
            key = {"pk": {"S": f"k{n}"}}
            ddb.put_item(TableName="t", Item={**item, **key})
            ddb.get_item(TableName="t", Key=key)
            ddb.update_item(TableName="t", Key=key, UpdateExpression="SET #v = :v", ExpressionAttributeNames={"#v": "zz"},
                            ExpressionAttributeValues={":v": {"N": str(n)}}, ReturnValues="ALL_OLD")
        ddb.scan(TableName="t")
        ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": {"pk": {"S": "k0"}}}}])
        arn = ddb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        streams.get_records(ShardIterator=iterator)
    return bodies


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ITEMS, min_size=1, max_size=3))
def test_attribute_values_are_serialised_byte_for_byte_as_moto_does(items: list[dict[str, Any]]) -> None:
    """Items of every attribute type, nested, through GetItem, UpdateItem, Scan, TransactGetItems and the
    stream: the bodies moto sends are the same with the one-step AttributeValue path and with moto's walk."""
    import os

    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"  # moto's Streams with current botocore
    moto_speedups.install_caches()
    fast = _raw_bodies(items)
    with moto_speedups.unpatched():
        moto_speedups.uninstall()
        own = _raw_bodies(items)
    moto_speedups.install_caches()
    assert [_without_volatile(b) for b in fast] == [_without_volatile(b) for b in own]


def _without_volatile(body: bytes) -> bytes:
    """A body with what differs between any two runs (stream ARNs, sequence numbers, times, ids) blanked."""
    import re

    text = body.decode()
    text = re.sub(r'"(StreamArn|LatestStreamArn|LatestStreamLabel|TableArn|TableId|ShardIterator|NextShardIterator|'
                  r'SequenceNumber|StartingSequenceNumber|eventID|CreationDateTime|ApproximateCreationDateTime|'
                  r'StreamLabel|CreationRequestDateTime|SizeBytes)": ?("[^"]*"|[0-9.e+]+)', r'"\1": "-"', text)
    return text.encode()


# -- DynamoDB expressions, the request router, receipt handles ---------------------------------------------------
def _expression_requests(ddb: Any) -> list[Any]:
    """Conditions and updates of every shape the project uses and more (functions, paths, IN, BETWEEN, size, nested
    maps and lists, ADD and REMOVE), each text repeated with other values, and bad ones: every answer and error."""
    answers: list[Any] = []

    def call(method: str, **kwargs: Any) -> None:
        try:
            got = getattr(ddb, method)(**kwargs)
            got.pop("ResponseMetadata", None)
            answers.append(got)
        except ClientError as error:
            answers.append((error.response["Error"]["Code"], error.response["Error"]["Message"],
                            error.response.get("CancellationReasons")))
        except Exception as error:  # noqa: BLE001 - moto lets some bad requests escape as Python errors
            answers.append((type(error).__name__, str(error)))

    _tables(ddb)
    for n in range(6):
        key = {"pk": {"S": f"k{n % 3}"}}
        call("put_item", TableName="flat", Item={**key, "n": {"N": str(n)}, "tags": {"SS": ["a", f"t{n}"]},
                                                  "m": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}}},
             ConditionExpression="attribute_not_exists(pk) OR n < :n", ExpressionAttributeValues={":n": {"N": str(n)}})
        call("update_item", TableName="flat", Key=key, ReturnValues="ALL_NEW",
             UpdateExpression="SET n = n + :one, #s = if_not_exists(#s, :s), m.x = list_append(m.x, :l) ADD tags :t",
             ConditionExpression="size(tags) >= :two AND begins_with(pk, :k) AND #s IN (:s, :other)"
                                 if n % 2 else "n BETWEEN :lo AND :hi",
             ExpressionAttributeNames={"#s": "state"} if n % 2 else {"#s": "state"},
             ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": "HELD"}, ":l": {"L": [{"N": str(n)}]},
                                        ":t": {"SS": [f"u{n}"]},
                                        **({":two": {"N": "2"}, ":k": {"S": "k"}, ":other": {"S": "SENT"}} if n % 2
                                           else {":lo": {"N": "0"}, ":hi": {"N": str(n)}})})
        call("update_item", TableName="flat", Key=key, UpdateExpression="REMOVE m.x[0] SET n = :v",
             ConditionExpression="NOT (n = :v)", ExpressionAttributeValues={":v": {"N": str(n)}})
        call("transact_write_items", TransactItems=[
            {"Update": {"TableName": "flat", "Key": key, "UpdateExpression": "SET n = n - :a",
                        "ConditionExpression": "n >= :a", "ExpressionAttributeValues": {":a": {"N": str(n)}}}},
            {"Put": {"TableName": "ranged", "Item": {"pk": key["pk"], "sk": {"S": f"s{n}"}},
                     "ConditionExpression": "attribute_not_exists(sk)"}},
            {"ConditionCheck": {"TableName": "flat", "Key": {"pk": {"S": "k0"}}, "ConditionExpression": "n <> :z",
                                "ExpressionAttributeValues": {":z": {"N": str(n - 100)}}}}])
        call("query", TableName="ranged", KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
             FilterExpression="attribute_exists(sk)", ExpressionAttributeValues={":p": key["pk"], ":s": {"S": "s"}})
        call("scan", TableName="flat", FilterExpression="contains(tags, :t) OR n > :n",
             ExpressionAttributeValues={":t": {"S": "a"}, ":n": {"N": str(n)}})
        call("delete_item", TableName="ranged", Key={"pk": key["pk"], "sk": {"S": f"s{n - 1}"}},
             ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_OLD")
    # bad texts, names and values, each twice (a failed parse is not kept)
    for _ in range(2):
        call("update_item", TableName="flat", Key={"pk": {"S": "k0"}}, UpdateExpression="SET n = ",
             ExpressionAttributeValues={":v": {"N": "1"}})
        call("update_item", TableName="flat", Key={"pk": {"S": "k0"}}, UpdateExpression="SET #x = :v",
             ExpressionAttributeValues={":v": {"N": "1"}})
        call("update_item", TableName="flat", Key={"pk": {"S": "k0"}}, UpdateExpression="SET n = :v",
             ConditionExpression="n < :missing", ExpressionAttributeValues={":v": {"N": "1"}})
        call("put_item", TableName="flat", Item={"pk": {"S": "k9"}}, ConditionExpression="size = :v",
             ExpressionAttributeValues={":v": {"N": "1"}})
        call("put_item", TableName="flat", Item={"pk": {"S": "k9"}}, ConditionExpression="(n = :v)) AND",
             ExpressionAttributeValues={":v": {"N": "1"}})
        call("update_item", TableName="flat", Key={"pk": {"S": "k1"}}, UpdateExpression="SET n = n + :s",
             ExpressionAttributeValues={":s": {"S": "text"}})
        call("update_item", TableName="flat", Key={"pk": {"S": "k1"}}, UpdateExpression="SET pk = :s",
             ExpressionAttributeValues={":s": {"S": "text"}})
    for name in ("flat", "ranged"):
        answers.append(sorted(map(repr, ddb.scan(TableName=name)["Items"])))
    return answers


def _stream_records() -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["eu-west-2"].tables["flat"].stream_shard
    return [repr({k: r.record["dynamodb"].get(k) for k in ("Keys", "NewImage", "OldImage")}) + r.record["eventName"]
            for r in shard.items]


def test_expression_caches_answer_as_moto_does_and_never_change_what_they_keep() -> None:
    """The same requests with the caches (lexed conditions, parsed conditions and updates, the validator's copy,
    the traversal, the item constructor) and with moto's own code: the same answers, errors, items and stream."""
    import pickle

    runs = []
    for patched in (False, True):
        moto_speedups.uninstall()
        if patched:
            moto_speedups.install()
        with moto.mock_aws():
            runs.append((_expression_requests(_client()), _stream_records()))
    try:
        assert runs[1] == runs[0]
        assert any(type(a) is tuple for a in runs[0][0]) and any(type(a) is dict for a in runs[0][0])
        assert len(moto_speedups._CONDITION_TOKENS) > 10 and len(moto_speedups._UPDATE_ASTS) > 5
        assert len(moto_speedups._CONDITIONS) > 10
        # what is kept is what moto parses now: nothing changed a kept tree or token
        from moto.dynamodb.comparisons import ConditionExpressionParser

        for (parser, text), (ast, blob) in moto_speedups._UPDATE_ASTS.items():
            assert pickle.dumps(ast, protocol=pickle.HIGHEST_PROTOCOL) == blob
            assert pickle.dumps(moto_speedups._CACHE_ORIGINALS["update_make"].__func__(parser, text),
                                protocol=pickle.HIGHEST_PROTOCOL) == blob
        for text, tokens in moto_speedups._CONDITION_TOKENS.items():
            assert tuple(moto_speedups._CACHE_ORIGINALS["lex_condition"](
                ConditionExpressionParser(text, {}, {}))) == tokens
    finally:
        moto_speedups.install()


def test_the_request_router_and_receipt_handles_are_motos() -> None:
    """Every service's URL routes to the handler moto's own search finds (none for an unknown host), and SQS
    receipt handles are the same letters from the same seeded generator."""
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.moto_api._internal import mock_random

    moto_speedups.install()
    with moto.mock_aws():
        sqs = _client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        handles = []
        for patched in (True, False):
            if not patched:
                moto_speedups.uninstall()
            for n in range(3):
                sqs.send_message(QueueUrl=url, MessageBody=str(n))
            mock_random.seed(11)
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
            handles.append([m["ReceiptHandle"] for m in got])
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])
        moto_speedups.install()
        assert handles[0] == handles[1] and len(handles[0]) == 3 and len(handles[0][0]) == 185

    import moto.backends as backends
    import moto.backend_index as backend_index
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict

    checked = 0
    with moto.mock_aws():
        for service in ("dynamodb", "sqs", "kms", "sts", "iam", "cloudformation", "dynamodbstreams", "lambda",
                        "s3", "events", "logs", "ssm", "secretsmanager"):
            backend_dict = backends.get_backend(service)
            if isinstance(backend_dict, BackendDict):
                accounts = backend_dict[DEFAULT_ACCOUNT_ID]
                backend = accounts["us-east-1"] if "us-east-1" in accounts else accounts["aws"]
            else:
                backend = backend_dict["global"]
            for url in [f"https://{service}.eu-west-2.amazonaws.com/", f"https://{service}.us-east-1.amazonaws.com/x/y",
                        "https://bucket.s3.eu-west-2.amazonaws.com/key", "https://nothing.example.com/"]:
                import re

                own_services = tuple(s for s, p in backend_index.backend_url_patterns if p.match(url))
                assert moto_speedups._services_for(url) == own_services
                own = next(((u, h) for u, h in backend.urls.items() if re.compile(u).match(url)), None)
                assert moto_speedups._handler_for(backend, url) == own
                assert moto_speedups._handler_for(backend, url) == own  # and again, from the cache
                checked += 1
    assert checked > 40
    assert BotocoreStubber.process_request is moto_speedups._process_request


def test_a_faulted_pipeline_run_ends_the_same_with_and_without_the_speedups() -> None:
    """A short chaos run (throttles, crashes, duplicates, poison) through moto's own code and through every
    patch: the same payments, statuses, ledger sums, dead letters, calls by operation and crash points."""
    import dataclasses

    from fasterpay.aws import open_environment
    from simulations.pipeline_bench import RunSettings, run_pipeline

    timed = {"latency_ms", "latency_samples", "peak_rss_mb", "seconds", "seconds_in_handlers", "peak_set_tps",
             "lambda_gb_seconds"}
    ends = []
    try:
        for patched in (False, True):
            moto_speedups.uninstall()
            with moto.mock_aws(), open_environment("moto", region="eu-west-2") as env:
                if patched:
                    moto_speedups.install()
                else:  # the run installs the patches itself: keep moto's own code in place
                    moto_speedups.install = lambda: None  # type: ignore[assignment]
                try:
                    summary = run_pipeline(env, RunSettings(payments=30, seed=5, duplicate_rate=0.2, poison_messages=1,
                                                            throttle_rate=0.05, crash_rate=0.05), name_prefix="both")
                finally:
                    moto_speedups.install = _INSTALL  # type: ignore[assignment]
            ends.append({f.name: getattr(summary, f.name) for f in dataclasses.fields(summary) if f.name not in timed})
    finally:
        moto_speedups.install()
    assert ends[0]["lost"] == ends[0]["doubled"] == 0 and sum(ends[0]["crash_points_hit"].values()) > 0
    assert ends[1] == ends[0]


_INSTALL = moto_speedups.install


def test_account_backends_are_made_and_registered_as_moto_does() -> None:
    """The quick path of an account's backend lookup: a new account gets moto's backend, a known one the same
    object again, and every dict used is registered once, as with moto's own method."""
    from moto.core.base_backend import BackendDict
    from moto.sqs.models import sqs_backends

    moto_speedups.install_caches()
    with moto.mock_aws():
        first = sqs_backends["123456789012"]
        assert sqs_backends["123456789012"] is first and first.account_id == "123456789012"
        assert sum(d is sqs_backends for d in BackendDict._instances) == 1
        with moto_speedups.unpatched():
            moto_speedups.uninstall()
            assert sqs_backends["123456789012"] is first
            other = sqs_backends["210987654321"]
        moto_speedups.install_caches()
        assert sqs_backends["210987654321"] is other and sum(d is sqs_backends for d in BackendDict._instances) == 1


@pytest.mark.parametrize("length", [0, 1, 8, 52, 185])
def test_random_strings_are_motos_draw_for_draw(length: int) -> None:
    """Request ids, hex ids and receipt handles: the same characters from the same seed, and the generator left
    in the same state (the next draw agrees too)."""
    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom

    def draws() -> list[Any]:
        mock_random.seed(length)
        return [mock_random.get_random_string(length), mock_random.get_random_string(length, include_digits=False),
                mock_random.get_random_string(length, lower_case=True), mock_random.get_random_hex(length),
                mock_random.random()]

    moto_speedups.install()
    fast = draws()
    assert MotoRandom.get_random_string is moto_speedups._get_random_string
    with moto_speedups.unpatched():
        moto_speedups.uninstall()
        own = draws()
    moto_speedups.install()
    assert fast == own and all(len(s) == length for s in fast[:4])

"""Patches that make moto fast enough for chaos runs at volume, without changing what it answers.

moto 5 implements ``TransactWriteItems`` by deep-copying every table the transaction names, so
that it can restore them if one action fails. The copy costs time in proportion to the table, so a
bench of N payments spends O(N²) in ``copy.deepcopy``: at 1,000 payments it was most of the run.
:func:`install` replaces that method with one that snapshots only the items the transaction
touches (at most 100, by DynamoDB's own limit) and the length of each table's stream, and restores
exactly those on a rollback. Everything else is moto's own code, called in moto's own order: the
same unicity check, the same condition evaluation against the current item, the same ``put_item``,
``update_item`` and ``delete_item``, the same ``TransactionCanceledException`` with one reason per
action.

moto's SQS ``GetQueueAttributes`` recomputes every attribute of the queue (three passes over its
messages) once per requested name, and twice more per name returned; the patch computes only the
names asked for, once per call. The answer is the same dictionary. moto also computes every attribute
of the queue on every ``SendMessage`` (to read ``ContentBasedDeduplication``) and on every message a
``ReceiveMessage`` returns (to read ``MessageRetentionPeriod``), and each pass over the queue's messages
reads the clock once per message. A receive from a queue of n messages so cost O(n²) clock reads: a
bench that filled a queue with 200 messages before draining it spent 40 ms in each ``ReceiveMessage``,
ten times what a shallow queue costs, and the queue's depth, not the work, set the time. The patched
passes read the clock once each and the two single-attribute reads compute that one attribute; the
messages counted and returned are the same.

Three more are caches of answers that cannot change while moto runs. moto's CloudFormation parses a
template's YAML with PyYAML's pure-Python loader for every stack it creates; the patch parses each template
body once and hands every stack a deep copy. The other two: moto 5.2 serialises every
response by walking the botocore output shape, and asks for each member of each structure through an
attribute picker that builds up to a dozen alias candidates (the key, the shape's name, the parent's
prefix, the class's prefix, their snake case...) before it looks one up. A DynamoDB item is a map of
``AttributeValue`` structures of ten members each, so one ``GetItem`` builds hundreds of candidate lists,
all the same. For a plain ``dict`` the candidates depend only on the picker, the member's shape, its
parent shape and the key (moto makes a new picker per response, all alike); the patch computes them
once per such combination and keeps them, and does
moto's own lookups in moto's order. moto also lists every method of the response class (with
``inspect.getmembers``) on every request; the patch lists them once per class. Together they take
about 12% off a DynamoDB ``GetItem`` or ``PutItem`` on moto. Two more change when moto does work, not
what it answers: a DynamoDB ``AttributeValue`` of strings, numbers, booleans, string sets and nested maps
and lists is written in one step instead of through the picker (``_serialize_json_structure``), and a KMS
key's asymmetric pair is generated on first use (``_LazyPrivateKey``). :func:`install_caches` applies
these five alone (the test suite does, for every test); ``tests/test_moto_speedups.py`` checks every
pick and every listing of a pipeline run against moto's own, and the serialised bodies byte for byte.

:func:`install_caches` also cuts work moto repeats on every request (10 to 20% of the CPU of a chaos
run or a region drill). DynamoDB: a condition expression is lexed once per text (moto lexes it two or three
times per request, compiling six regular expressions per token) and parsed once per text, names and values
(the tree is built by moto's parser from private copies, so it shares nothing with a request); an update
expression is parsed once per text (moto never changes the tree: its validator works on a deep copy, which
is made here by unpickling the tree); the validator's traversals look up the node classes they process once
per traversal, not once per node; and an item's size is summed as its attributes are added rather than from
scratch for each one (same limit, same attribute raising). The request router remembers, per URL, which
services' patterns match it and which of the backend's URL patterns does (moto tries about 250 patterns per
request and rebuilds the backend's URL table); the pass-through checks, backend lookup and handler are
moto's. ``camelcase_to_underscores`` (a pure function of a string, called per request and per queue
attribute) is memoised where moto's response class and SQS call it; request ids, hex ids and SQS receipt
handles are drawn with the same calls to moto's seeded generator, without a ``choice`` call per letter; and
the lookup of an account's backends (five per request) tests the account and the dict's registration the
quick way first (a dict lookup, an identity test), running moto's method when either says no. Each is checked against
moto's own code: the same answers, errors, items and stream records for requests of every expression shape
(bad ones included), the same handlers for every URL, the same random strings from the same seed, the same
account backends, and the same end of a faulted pipeline run.

The last is a clock, not a speed-up of moto's code: moto's SQS reads the wall clock for visibility
timeouts, delays and the FIFO deduplication window. A receive whose answer the fault injector drops
leaves its message invisible for the queue's whole visibility timeout (180 s in the template), and
the local runner would wait that long in real time. With the patch, SQS reads the wall clock plus an
offset that :func:`advance_sqs_clock` moves on, and the benches hand that function to the runner as
its ``sleep``: the wait happens in simulated time, and every timer SQS keeps (visibility, delay,
deduplication window) moves by the same amount, as it would on AWS.

``tests/test_moto_speedups.py`` runs random transactions against the patched and the original
implementation and asserts identical tables, streams and errors. The patch is applied by the
simulations (benches, chaos, notebooks) and by the test suite's ``conftest.py``; the reference
package never needs it and never imports it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["advance_sqs_clock", "forget_deleted_receipts", "forget_tracked_instances", "install", "install_caches", "install_on_moto",
           "installed", "sqs_clock_offset", "uninstall", "unpatched"]

_ORIGINALS: dict[str, Any] = {}
_SQS_CLOCK = {"offset": 0.0}  # seconds SQS's clock runs ahead of the wall clock


def advance_sqs_clock(seconds: float) -> None:
    """Move SQS's clock on by ``seconds`` (the runner's ``sleep`` in a simulation)."""
    if seconds < 0:
        raise ValueError("time does not run backwards")
    _SQS_CLOCK["offset"] += seconds


def sqs_clock_offset() -> float:
    """How far SQS's clock runs ahead of the wall clock, in seconds."""
    return _SQS_CLOCK["offset"]


def _sqs_unix_time() -> float:
    return float(_ORIGINALS["sqs_unix_time"]()) + _SQS_CLOCK["offset"]


def _sqs_unix_time_millis() -> float:
    return float(_ORIGINALS["sqs_unix_time_millis"]()) + 1000 * _SQS_CLOCK["offset"]


def installed() -> bool:
    """True while the patches are in place."""
    return bool(_ORIGINALS)


_CACHE_ORIGINALS: dict[str, Any] = {}
_LOOKUP: dict[str, Any] = {}


def install_caches() -> None:
    """Apply the caches and fast paths (see the module's docstring): moto's answers, faster (idempotent)."""
    if _CACHE_ORIGINALS:
        return
    from simulations import botocore_data

    botocore_data.install()  # before moto's CloudFormation is imported below: it parses botocore's data again and again
    from moto.core import responses
    from moto.core.serialize import AttributePicker

    from moto.core.utils import get_value

    from moto.cloudformation.models import Stack as FakeStack

    _LOOKUP["get_value"] = get_value  # moto's own lookup, fetched once (the pick below is a hot path)
    _CACHE_ORIGINALS["attribute_picker_call"] = AttributePicker.__call__
    _CACHE_ORIGINALS["method_names_from_class"] = responses.method_names_from_class
    _CACHE_ORIGINALS["parse_template"] = FakeStack.__dict__["parse_template"]
    _LOOKUP["parse_template"] = FakeStack.parse_template
    from moto.kms import models as kms_models
    from moto.core.serialize import BaseJSONSerializer

    _CACHE_ORIGINALS["kms_generate_private_key"] = kms_models.generate_private_key
    _CACHE_ORIGINALS["json_structure"] = BaseJSONSerializer.__dict__["_serialize_type_structure"]
    BaseJSONSerializer._serialize_type_structure = _serialize_json_structure  # type: ignore[method-assign]
    AttributePicker.__call__ = _pick_attribute  # type: ignore[method-assign]
    responses.method_names_from_class = _method_names_from_class  # type: ignore[assignment]
    FakeStack.parse_template = staticmethod(_parse_template)  # type: ignore[method-assign]
    kms_models.generate_private_key = _LazyPrivateKey  # type: ignore[assignment]
    _install_expression_caches()
    _install_request_router()


def _uninstall_caches() -> None:
    if not _CACHE_ORIGINALS:
        return
    from moto.core import responses
    from moto.core.serialize import AttributePicker

    from moto.cloudformation.models import Stack as FakeStack

    from moto.kms import models as kms_models
    from moto.core.serialize import BaseJSONSerializer

    kms_models.generate_private_key = _CACHE_ORIGINALS.pop("kms_generate_private_key")  # type: ignore[assignment]
    BaseJSONSerializer._serialize_type_structure = _CACHE_ORIGINALS.pop("json_structure")  # type: ignore[method-assign]
    AttributePicker.__call__ = _CACHE_ORIGINALS.pop("attribute_picker_call")  # type: ignore[method-assign]
    responses.method_names_from_class = _CACHE_ORIGINALS.pop("method_names_from_class")  # type: ignore[assignment]
    FakeStack.parse_template = _CACHE_ORIGINALS.pop("parse_template")  # type: ignore[method-assign]
    _TEMPLATES.clear()
    _uninstall_expression_caches()
    _uninstall_request_router()


# -- DynamoDB expressions: each string lexed or parsed once -------------------------------------------------
#: Condition expressions by text: the lexer's tokens (immutable named tuples; every later step builds new nodes).
_CONDITION_TOKENS: dict[str, tuple[Any, ...]] = {}
#: Update expressions by (parser class, text): (the parsed AST, its pickle). moto never changes the AST it parses
#: (its validator works on a deep copy), so the one object serves every caller; the pickle makes that copy fast.
_UPDATE_ASTS: dict[tuple[Any, str], tuple[Any, bytes]] = {}
_AST_PICKLES: dict[int, tuple[Any, bytes]] = {}  # id of a cached AST -> (the AST, its pickle)
_MAX_EXPRESSIONS = 4096  # a run uses a few dozen expression strings; past this, moto parses as before


def _install_expression_caches() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import Validator

    _CACHE_ORIGINALS["lex_condition"] = ConditionExpressionParser.__dict__["_lex_condition_expression"]
    _CACHE_ORIGINALS["update_make"] = UpdateExpressionParser.__dict__["make"]
    _CACHE_ORIGINALS["validator_init"] = Validator.__dict__["__init__"]
    _CACHE_ORIGINALS["nodes_to_be_processed"] = ast_nodes.DepthFirstTraverser.__dict__["nodes_to_be_processed"]
    _CACHE_ORIGINALS["traverse_node_recursively"] = ast_nodes.DepthFirstTraverser.__dict__["traverse_node_recursively"]
    _CACHE_ORIGINALS["condition_parse"] = ConditionExpressionParser.__dict__["parse"]
    from moto.dynamodb.models.dynamo_type import Item

    _CACHE_ORIGINALS["item_init"] = Item.__dict__["__init__"]
    Item.__init__ = _item_init  # type: ignore[method-assign]
    ConditionExpressionParser.parse = _parse_condition  # type: ignore[method-assign]
    ast_nodes.DepthFirstTraverser.traverse_node_recursively = _traverse_node_recursively  # type: ignore[method-assign]
    ConditionExpressionParser._lex_condition_expression = _lex_condition_expression  # type: ignore[method-assign]
    UpdateExpressionParser.make = classmethod(_make_update_expression)  # type: ignore[method-assign,assignment]
    Validator.__init__ = _validator_init  # type: ignore[method-assign]
    ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _nodes_to_be_processed  # type: ignore[method-assign]


def _uninstall_expression_caches() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import Validator

    ConditionExpressionParser._lex_condition_expression = _CACHE_ORIGINALS.pop("lex_condition")  # type: ignore[method-assign]
    UpdateExpressionParser.make = _CACHE_ORIGINALS.pop("update_make")  # type: ignore[method-assign]
    Validator.__init__ = _CACHE_ORIGINALS.pop("validator_init")  # type: ignore[method-assign]
    ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _CACHE_ORIGINALS.pop("nodes_to_be_processed")  # type: ignore[method-assign]
    ast_nodes.DepthFirstTraverser.traverse_node_recursively = _CACHE_ORIGINALS.pop("traverse_node_recursively")  # type: ignore[method-assign]
    ConditionExpressionParser.parse = _CACHE_ORIGINALS.pop("condition_parse")  # type: ignore[method-assign]
    from moto.dynamodb.models.dynamo_type import Item

    Item.__init__ = _CACHE_ORIGINALS.pop("item_init")  # type: ignore[method-assign]
    _CONDITION_TOKENS.clear()
    _CONDITIONS.clear()
    _UPDATE_ASTS.clear()
    _AST_PICKLES.clear()
    _PROCESSED_KINDS.clear()


def _lex_condition_expression(self: Any) -> Any:
    """moto's ``ConditionExpressionParser._lex_condition_expression``, once per expression text.

    moto lexes a condition expression two or three times per request (the response class checks the names
    used, the backend evaluates it, ``put_item``/``update_item`` evaluates it again), compiling six regular
    expressions per token each time. The tokens depend only on the text; each call gets a new deque of them
    (the parser consumes the deque). A text that does not lex raises as moto does, every time."""
    from collections import deque

    text = self.condition_expression
    tokens = _CONDITION_TOKENS.get(text) if type(text) is str else None
    if tokens is None:
        lexed = _CACHE_ORIGINALS["lex_condition"](self)
        if type(text) is not str or len(_CONDITION_TOKENS) >= _MAX_EXPRESSIONS:
            return lexed
        tokens = _CONDITION_TOKENS[text] = tuple(lexed)
    return deque(tokens)


def _make_update_expression(cls: Any, expression_str: Any) -> Any:
    """moto's ``UpdateExpressionParser.make``, once per expression text (an invalid text raises every time)."""
    key = (cls, expression_str)
    entry = _UPDATE_ASTS.get(key) if type(expression_str) is str else None
    if entry is None:
        import pickle

        ast = _CACHE_ORIGINALS["update_make"].__func__(cls, expression_str)
        if type(expression_str) is not str or len(_UPDATE_ASTS) >= _MAX_EXPRESSIONS:
            return ast
        try:
            blob = pickle.dumps(ast, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - a tree that does not pickle is not cached
            return ast
        entry = _UPDATE_ASTS[key] = _AST_PICKLES[id(ast)] = (ast, blob)
    return entry[0]


def _validator_init(self: Any, expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
                    item: Any, table: Any) -> None:
    """moto's ``Validator.__init__``: the same attributes, in moto's order; the deep copy of a cached update
    expression's AST is made by unpickling it (the same tree of the same classes and values, 4x faster)."""
    import pickle

    self.expression_attribute_names = expression_attribute_names
    self.expression_attribute_values = expression_attribute_values
    self.item = item
    self.table = table
    self.processors = self.get_ast_processors()
    blob = _AST_PICKLES.get(id(expression))
    if blob is not None and blob[0] is expression:
        self.node_to_validate = pickle.loads(blob[1])
    else:
        self.node_to_validate = copy.deepcopy(expression)


#: (text, names, values) as JSON -> (the condition's operator tree, the names found, the values found): the
#: last few only, since the values change from payment to payment; moto parses the same condition with the
#: same values two or three times in one request.
_CONDITIONS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {}
_MAX_CONDITIONS = 256


def _condition_key(parser: Any) -> str | None:
    text, names, values = (parser.condition_expression, parser.expression_attribute_names,
                           parser.expression_attribute_values)
    if type(text) is not str or not text:
        return None
    try:
        return json.dumps([text, names, values], sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # binary values (bytes) and the like: moto parses them every time
        return None


def _parse_condition(self: Any) -> Any:
    """moto's ``ConditionExpressionParser.parse``, remembered for the same text, names and values.

    The operator tree is built from those three only, and moto never changes one after it is built (its
    operators read the item they are given and return new values). The tree kept is built by moto's own
    parser from private copies of the names and values (decoded from the key), so that it shares nothing
    with any request. A parse that fails is not kept: moto's parser raises on this parser, every time."""
    key = _condition_key(self)
    if key is None:
        return _CACHE_ORIGINALS["condition_parse"](self)
    entry = _CONDITIONS.get(key)
    if entry is None:
        text, names, values = json.loads(key)
        fresh = type(self)(text, names, values)
        try:
            op = _CACHE_ORIGINALS["condition_parse"](fresh)
        except Exception:  # noqa: BLE001 - moto's own parse raises its own error, on this parser
            return _CACHE_ORIGINALS["condition_parse"](self)
        if len(_CONDITIONS) >= _MAX_CONDITIONS:
            _CONDITIONS.pop(next(iter(_CONDITIONS)))
        entry = _CONDITIONS[key] = (op, tuple(fresh.expr_attr_names_found), tuple(fresh.expr_attr_values_found))
    op, names_found, values_found = entry
    self.expr_attr_names_found.extend(names_found)
    self.expr_attr_values_found.extend(values_found)
    return op


def _item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__``, with the item's size summed as it grows instead of from scratch per attribute.

    moto's ``LimitedSizeDict`` re-measures every attribute already set each time one is added (quadratic in
    the attributes); here each is measured once, and the same total is compared with the same limit in the
    same order, so the same attribute raises ``ItemSizeTooLarge``. Attribute names that are not plain
    strings take moto's own path."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if type(attrs) is not dict or any(type(key) is not str for key in attrs):
        _CACHE_ORIGINALS["item_init"](self, hash_key, range_key, attrs)
        return
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    total = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        size = bytesize(key) + typed.size()
        if total + size > 405000:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)
        total += size


def _traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
    """moto's ``DepthFirstTraverser.traverse_node_recursively``: the same walk, with the node classes to process
    looked up once per call rather than once per node, and moto's no-op child hook skipped where not overridden."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    if type(self)._processing_map.__module__ != "moto.dynamodb.parsing.validators":  # not one of moto's
        return _CACHE_ORIGINALS["traverse_node_recursively"](self, node, child_id)
    kinds = self.nodes_to_be_processed()
    hook = None if type(self).pre_processing_of_child is DepthFirstTraverser.pre_processing_of_child \
        else self.pre_processing_of_child

    def walk(node: Any, child_id: int) -> Any:
        if isinstance(node, Node):
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    if hook is not None:
                        hook(node, i)
                    walk(child_node, i)
            if isinstance(node, kinds):
                node = self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return walk(node, child_id)


#: Traverser class -> the node classes it processes (moto's own ``_processing_map`` keys, per class).
_PROCESSED_KINDS: dict[type, tuple[type, ...]] = {}


def _nodes_to_be_processed(self: Any) -> tuple[type, ...]:
    """moto's ``DepthFirstTraverser.nodes_to_be_processed``, once per traverser class.

    moto builds the tuple from a new ``_processing_map()`` dict at every node of every traversal (ten
    traversals per ``UpdateItem``). Every traverser moto defines maps constant node classes to its methods,
    so the keys depend on the class only; a class defined elsewhere gets moto's own answer every time."""
    kind = type(self)
    kinds = _PROCESSED_KINDS.get(kind)
    if kinds is None:
        kinds = _CACHE_ORIGINALS["nodes_to_be_processed"](self)
        if getattr(kind._processing_map, "__module__", None) != "moto.dynamodb.parsing.validators":
            return kinds
        _PROCESSED_KINDS[kind] = kinds
    return kinds


# -- the request router and SQS's attribute names ------------------------------------------------------------
#: URL (no query string) -> the services whose patterns match it, in moto's order; (backend class, ISO regions on,
#: URL) -> (the backend's URL pattern that matches first, its handler), or None.
_URL_SERVICES: dict[str, tuple[str, ...]] = {}
_URL_HANDLERS: dict[tuple[Any, bool, str], Any] = {}
_MAX_URLS = 4096


def _install_request_router() -> None:
    import functools

    from moto.core import botocore_stubber
    from moto.core import responses
    from moto.core import utils
    from moto.sqs import models as sqs_models

    _CACHE_ORIGINALS["process_request"] = botocore_stubber.BotocoreStubber.__dict__["process_request"]
    botocore_stubber.BotocoreStubber.process_request = _process_request  # type: ignore[method-assign]
    # a pure function of one string, called per request (the action's name) and per attribute of a queue
    _CACHE_ORIGINALS["camelcase_to_underscores"] = utils.camelcase_to_underscores
    cached = functools.lru_cache(maxsize=4096)(utils.camelcase_to_underscores)
    responses.camelcase_to_underscores = cached  # type: ignore[attr-defined]
    sqs_models.camelcase_to_underscores = cached  # type: ignore[attr-defined]
    _CACHE_ORIGINALS["generate_receipt_handle"] = sqs_models.generate_receipt_handle
    sqs_models.generate_receipt_handle = _generate_receipt_handle  # type: ignore[attr-defined]
    from moto.moto_api._internal.moto_random import MotoRandom

    _CACHE_ORIGINALS["get_random_string"] = MotoRandom.__dict__["get_random_string"]
    _CACHE_ORIGINALS["get_random_hex"] = MotoRandom.__dict__["get_random_hex"]
    MotoRandom.get_random_string = _get_random_string  # type: ignore[method-assign]
    MotoRandom.get_random_hex = _get_random_hex  # type: ignore[method-assign]
    from moto.core.base_backend import BackendDict

    _CACHE_ORIGINALS["create_account_backend"] = BackendDict.__dict__["_create_account_specific_backend"]
    BackendDict._create_account_specific_backend = _create_account_specific_backend  # type: ignore[method-assign]


def _standard_choice(generator: Any) -> bool:
    """True when ``generator.choice(seq)`` is the standard library's ``seq[generator._randbelow(len(seq))]``."""
    import random as stdlib_random

    kind = type(generator)
    return kind.choice is stdlib_random.Random.choice and kind._randbelow is stdlib_random.Random._randbelow


def _get_random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
    """moto's ``MotoRandom.get_random_string`` (every response's request id: 52 letters), with the same draws
    from the generator (one ``_randbelow`` per letter, as ``choice`` makes) and no ``choice`` call per letter."""
    import string

    if not _standard_choice(self):
        return _CACHE_ORIGINALS["get_random_string"](self, length, include_digits, lower_case)
    pool = string.ascii_letters
    if include_digits:
        pool += string.digits
    size, below = len(pool), self._randbelow
    if not size:
        raise IndexError("Cannot choose from an empty sequence")
    random_str = "".join([pool[below(size)] for _ in range(length)])
    return random_str.lower() if lower_case else random_str


def _get_random_hex(self: Any, length: int = 8) -> str:
    """moto's ``MotoRandom.get_random_hex``, with the same draws (see :func:`_get_random_string`)."""
    from moto.moto_api._internal.moto_random import HEX_CHARS

    if not _standard_choice(self):
        return _CACHE_ORIGINALS["get_random_hex"](self, length)
    size, below = len(HEX_CHARS), self._randbelow
    return "".join([str(HEX_CHARS[below(size)]) for _ in range(length)])


def _create_account_specific_backend(self: Any, account_id: str) -> None:
    """moto's ``BackendDict._create_account_specific_backend`` (run on every lookup of an account's backends),
    with its two membership tests answered the quick way first: the account id by the dict's own lookup (moto
    lists the keys), and this dict among all of them by identity (moto compares it with each by ``==``). When
    either quick test says no, moto's own method runs, so what it adds is moto's."""
    from moto.core.base_backend import BackendDict

    if type(account_id) is str and account_id in self.keys() and any(d is self for d in BackendDict._instances):  # type: ignore[misc]
        return
    _CACHE_ORIGINALS["create_account_backend"](self, account_id)


def _generate_receipt_handle() -> str:
    """moto's ``generate_receipt_handle``: 185 letters drawn from moto's random generator with the same draws
    (``Random.choice`` is ``seq[self._randbelow(len(seq))]``), without a generator expression and a method
    call per letter. A generator whose ``choice`` or ``_randbelow`` is not the standard one is asked moto's way."""
    import string

    from moto.moto_api._internal import mock_random

    if not _standard_choice(mock_random):
        return _CACHE_ORIGINALS["generate_receipt_handle"]()
    letters = string.ascii_lowercase
    below = mock_random._randbelow
    return "".join([letters[below(26)] for _ in range(185)])


def _uninstall_request_router() -> None:
    from moto.core import botocore_stubber
    from moto.core import responses
    from moto.sqs import models as sqs_models

    botocore_stubber.BotocoreStubber.process_request = _CACHE_ORIGINALS.pop("process_request")  # type: ignore[method-assign]
    original = _CACHE_ORIGINALS.pop("camelcase_to_underscores")
    responses.camelcase_to_underscores = original  # type: ignore[attr-defined]
    sqs_models.camelcase_to_underscores = original  # type: ignore[attr-defined]
    sqs_models.generate_receipt_handle = _CACHE_ORIGINALS.pop("generate_receipt_handle")  # type: ignore[attr-defined]
    from moto.moto_api._internal.moto_random import MotoRandom

    MotoRandom.get_random_string = _CACHE_ORIGINALS.pop("get_random_string")  # type: ignore[method-assign]
    MotoRandom.get_random_hex = _CACHE_ORIGINALS.pop("get_random_hex")  # type: ignore[method-assign]
    from moto.core.base_backend import BackendDict

    BackendDict._create_account_specific_backend = _CACHE_ORIGINALS.pop("create_account_backend")  # type: ignore[method-assign]
    _URL_SERVICES.clear()
    _URL_HANDLERS.clear()


def _services_for(clean_url: str) -> tuple[str, ...]:
    """The services of moto's index whose pattern matches ``clean_url``, in the index's order (moto's loop
    tries each in turn until one's backend has a handler for the URL)."""
    import moto.backend_index as backend_index

    found = _URL_SERVICES.get(clean_url)
    if found is None:
        found = tuple(service for service, pattern in backend_index.backend_url_patterns if pattern.match(clean_url))
        if len(_URL_SERVICES) < _MAX_URLS:
            _URL_SERVICES[clean_url] = found
    return found


def _handler_for(backend: Any, clean_url: str) -> Any:
    """The first (url, handler) of ``backend.urls`` whose pattern matches ``clean_url``, or None (as moto's loop).

    ``backend.urls`` is built from the backend class's ``urls`` module and the ISO-regions setting only (for a
    class that keeps moto's ``urls`` and ``url_bases``; any other is searched moto's way on every call)."""
    import re

    from moto.core.base_backend import BaseBackend
    from moto.settings import enable_iso_regions

    kind = type(backend)
    if kind.urls is not BaseBackend.urls or kind.url_bases is not BaseBackend.url_bases:  # its own table: moto's way
        return next(((url, handler) for url, handler in backend.urls.items() if re.compile(url).match(clean_url)), None)
    key = (kind, bool(enable_iso_regions()), clean_url)
    found = _URL_HANDLERS.get(key, _MISSING)
    if found is _MISSING:
        found = next(((url, handler) for url, handler in backend.urls.items() if re.compile(url).match(clean_url)), None)
        if len(_URL_HANDLERS) < _MAX_URLS:
            _URL_HANDLERS[key] = found
    return found


def _process_request(self: Any, request: Any) -> Any:
    """moto's ``BotocoreStubber.process_request``, with the two pattern searches remembered per URL.

    moto matches each request's URL against the pattern of every service it knows (about 150 before
    DynamoDB, 250 before SQS), then rebuilds the chosen backend's URL table and compiles its patterns.
    Both depend only on the URL (and the backend's class and the ISO-regions setting); everything else
    (the pass-through and allow-list checks, the backend lookup, the recorder, the handler) is moto's,
    in moto's order."""
    import moto.backends as backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict
    from moto.core.botocore_stubber import (
        ServiceNotWhitelisted,
        get_equivalent_url_in_aws_domain,
        normalize_request,
        passthrough_service,
        passthrough_url,
        service_whitelisted,
    )
    from moto.core.exceptions import HTTPException

    parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
    clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"

    if passthrough_url(clean_url):
        return None

    for service in _services_for(clean_url):
        if passthrough_service(service):
            return None

        if not service_whitelisted(service):
            raise ServiceNotWhitelisted(service)

        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]

        if isinstance(backend_dict, BackendDict):
            if "us-east-1" in backend_dict[DEFAULT_ACCOUNT_ID]:
                backend = backend_dict[DEFAULT_ACCOUNT_ID]["us-east-1"]
            else:
                backend = backend_dict[DEFAULT_ACCOUNT_ID]["aws"]
        else:
            backend = backend_dict["global"]

        handled = _handler_for(backend, clean_url)
        if handled is not None:
            from moto.moto_api import recorder

            method_to_execute = handled[1]
            normalized_request = normalize_request(request)
            try:
                recorder._record_request(normalized_request)
                status, headers, body = method_to_execute(
                    normalized_request,
                    normalized_request.raw_url,
                    normalized_request.headers,
                )
            except HTTPException as e:
                status = e.code
                headers = e.get_headers()
                body = e.get_body()

            return status, headers, body

    import re

    if re.compile(r"https?://.+\.amazonaws.com/.*").match(clean_url):
        return 404, {}, "Not yet implemented"

    return None


def _attribute_value(value: Any) -> Any:
    """The JSON moto's serialiser writes for one DynamoDB ``AttributeValue`` held as a plain dict, or _MISSING.

    Strings (``S``, ``N``), booleans (``BOOL``, ``NULL``), string sets and nested ``M`` and ``L`` of those are
    written as they are: for them moto's member-by-member walk (ten members per value, each picked through
    a dozen candidate names) ends in the same dict. Anything else (binary, a set of binaries, a value that is
    not a plain dict or str) returns _MISSING, and moto's own walk serialises it."""
    if type(value) is not dict or len(value) != 1:
        return _MISSING
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return {kind: inner} if type(inner) is str else _MISSING
    if kind in ("BOOL", "NULL"):
        return {kind: inner} if type(inner) is bool else _MISSING
    if kind in ("SS", "NS"):
        return {kind: list(inner)} if type(inner) is list and all(type(v) is str for v in inner) else _MISSING
    if kind == "M" and type(inner) is dict:
        members = {}
        for name, member in inner.items():
            done = _attribute_value(member)
            if done is _MISSING:
                return _MISSING
            members[name] = done
        return {"M": members}
    if kind == "L" and type(inner) is list:
        items = []
        for member in inner:
            done = _attribute_value(member)
            if done is _MISSING:
                return _MISSING
            items.append(done)
        return {"L": items}
    return _MISSING


def _serialize_json_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    """moto's JSON ``_serialize_type_structure``, with DynamoDB's ``AttributeValue`` written in one step when
    :func:`_attribute_value` can (most of a DynamoDB response: every attribute of every item)."""
    if key and shape.name == "AttributeValue" and "name" not in shape.serialization:
        done = _attribute_value(value)
        if done is not _MISSING:
            serialized[key] = done
            return
    _CACHE_ORIGINALS["json_structure"](self, serialized, value, shape, key)


class _LazyPrivateKey:
    """moto's KMS key pair for one key, made when first used rather than when the key is created.

    moto gives every KMS key a private key for asymmetric signing, a 2,048-bit RSA pair even for a symmetric
    or HMAC key that can never sign: 0.05 to 0.5 s per ``CreateKey``, most of the time a vault stack takes to
    deploy. The pair is random either way; this one is generated by moto's own function on the first call
    that needs it (``Sign``, ``Verify``, ``GetPublicKey``), and every attribute is then the real key's."""

    def __init__(self, key_spec: str) -> None:
        self._key_spec = key_spec
        self._key: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_key_spec", "_key"):
            raise AttributeError(name)
        if self._key is None:
            from moto.kms.utils import generate_private_key  # moto's own (models.py imports this same function)

            self._key = generate_private_key(self._key_spec)
        return getattr(self._key, name)


#: Parsed CloudFormation templates by body (at most :data:`_MAX_TEMPLATES`; the project deploys a handful).
_TEMPLATES: dict[str, Any] = {}
_MAX_TEMPLATES = 64


def _parse_template(template: str) -> Any:
    """moto's ``Stack.parse_template``, once per template body: moto parses the YAML with PyYAML's pure-Python
    loader on every stack it creates (about 0.1 s for the pipeline's template); the parse of a body never
    changes, so each caller gets a deep copy of the first parse (a stack may change its copy)."""
    parsed = _TEMPLATES.get(template)
    if parsed is None:
        parsed = _LOOKUP["parse_template"](template)
        if len(_TEMPLATES) < _MAX_TEMPLATES:
            _TEMPLATES[template] = parsed
        else:
            return parsed
    return copy.deepcopy(parsed)


def install_on_moto(env: Any) -> None:
    """:func:`install` when ``env`` is moto (in process or its server); nothing on AWS."""
    from fasterpay.aws import Backend

    if env.backend is not Backend.AWS:
        install()


def install() -> None:
    """Apply the patches, the caches included (idempotent)."""
    install_caches()
    if _ORIGINALS:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs import models as sqs_models
    from moto.sqs.models import SQSBackend

    _ORIGINALS["transact_write_items"] = DynamoDBBackend.transact_write_items
    _ORIGINALS["get_queue_attributes"] = SQSBackend.get_queue_attributes
    from moto.sqs.models import Queue

    for name in _QUEUE_PASSES:
        _ORIGINALS[f"queue.{name}"] = getattr(Queue, name)
        setattr(Queue, name, property(_QUEUE_PASSES[name]))
    _ORIGINALS["sqs_unix_time"] = sqs_models.unix_time
    _ORIGINALS["sqs_unix_time_millis"] = sqs_models.unix_time_millis
    sqs_models.unix_time = _sqs_unix_time  # type: ignore[assignment]
    sqs_models.unix_time_millis = _sqs_unix_time_millis  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = _get_queue_attributes  # type: ignore[method-assign]


def uninstall() -> None:
    """Put moto's own methods back, the caches' included (for the equivalence tests)."""
    _uninstall_caches()
    if not _ORIGINALS:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import SQSBackend

    DynamoDBBackend.transact_write_items = _ORIGINALS.pop("transact_write_items")  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = _ORIGINALS.pop("get_queue_attributes")  # type: ignore[method-assign]
    from moto.sqs import models as sqs_models

    for name in _QUEUE_PASSES:
        setattr(sqs_models.Queue, name, _ORIGINALS.pop(f"queue.{name}"))

    sqs_models.unix_time = _ORIGINALS.pop("sqs_unix_time")  # type: ignore[assignment]
    sqs_models.unix_time_millis = _ORIGINALS.pop("sqs_unix_time_millis")  # type: ignore[assignment]


@contextmanager
def unpatched() -> Iterator[None]:
    """moto's own methods inside the block (to measure moto's own behaviour); the patches come back after."""
    was, caches_were = installed(), bool(_CACHE_ORIGINALS)
    uninstall()
    try:
        yield
    finally:
        if was:
            install()
        elif caches_were:
            install_caches()


def forget_tracked_instances() -> int:
    """Drop moto's references to every model object it has created; returns how many were dropped.

    moto keeps each object (every item, stream record and SQS message, deleted or not) in a class-level
    list for its server dashboard, so a long run grows by every payment it ever wrote. The benches call
    this when they drop a table set, as moto's own reset does; nothing else reads the lists."""
    from moto.core.model_instances import model_data

    dropped = 0
    for models in model_data.values():
        for model in models.values():
            tracked = getattr(model, "instances_tracked", None)
            if tracked:
                dropped += len(tracked)
                tracked.clear()
    return dropped


def forget_deleted_receipts() -> int:
    """Empty every moto SQS queue's set of deleted receipt handles; returns how many were forgotten.

    moto remembers every receipt handle of every deleted message, forever, so that deleting one twice
    succeeds; a long run grows by every receive it ever made. The benches call this when they drop a
    table set: the runner is idle then (no delete is pending), so no receipt handle of the set is used
    again. After it, deleting an old receipt handle raises ``ReceiptHandleIsInvalid``."""
    from moto.sqs.models import sqs_backends

    forgotten = 0
    for account in sqs_backends.values():
        for backend in account.values():
            for queue in backend.queues.values():
                forgotten += len(queue.deleted_messages)
                queue.deleted_messages.clear()
    return forgotten


# (picker class, its alias providers, member shape, parent shape, key) -> the candidate keys for a plain
# dict, in moto's order. moto makes a picker per response, so the picker's kind is the key, not the picker.
# The shapes come from moto's cached service models, so the entries are bounded by the models' members;
# each entry holds its shapes, so an id is never matched against a newer object that reuses it.
_CANDIDATES: dict[tuple[Any, ...], tuple[Any, Any, tuple[str, ...]]] = {}
_MISSING = object()


def _candidate_keys(picker: Any, context: Any) -> tuple[str, ...]:
    shape = context.shape
    parent = getattr(shape, "parent", None)  # moto sets it before it serialises each member
    ident = (type(picker), tuple(picker.alias_providers), id(shape), id(parent), context.key)
    entry = _CANDIDATES.get(ident)
    if entry is None or entry[0] is not shape or entry[1] is not parent:
        entry = (shape, parent, tuple(picker.get_possible_keys(context)))
        _CANDIDATES[ident] = entry
    return entry[2]


def _pick_attribute(self: Any, context: Any) -> Any:
    """moto's ``AttributePicker.__call__``, with a plain dict's candidate keys computed once per shape and key.

    Only a plain ``dict`` qualifies: for other objects (dict subclasses included) the candidates also
    depend on the object (a ``Meta`` alias, its class name), so moto's own method answers."""
    obj = context.obj
    if type(obj) is not dict:
        return _CACHE_ORIGINALS["attribute_picker_call"](self, context)
    get_value = _LOOKUP["get_value"]
    value = None
    for possible_key in _candidate_keys(self, context):
        found = get_value(obj, possible_key, _MISSING)
        if found is not _MISSING:
            value = found
            break
    if self.response_transformers:  # as moto: the first transformer whose path ends the key's path
        key_path = f"{context.key_path}.{context.key}"
        for transform_path, transform in self.response_transformers.items():
            if key_path.endswith(transform_path):
                return transform(value)
    return value


_METHOD_NAMES: dict[type, list[str]] = {}


def _method_names_from_class(clazz: Any) -> list[str]:
    """moto's listing of a response class's methods, once per class (a copy each time: callers may mutate it)."""
    names = _METHOD_NAMES.get(clazz)
    if names is None:
        names = _METHOD_NAMES[clazz] = _CACHE_ORIGINALS["method_names_from_class"](clazz)
    return list(names)


def _put_key(table: Any, item: dict[str, Any]) -> dict[str, Any]:
    """The key attributes of an item to put."""
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.models.dynamo_type import DynamoType

    if len(transact_items) > 100:
        raise TooManyTransactionsException()

    # What a rollback must restore: each touched item as it was, and each stream's length.
    snapshots: list[tuple[Any, Any, Any, Any]] = []  # (table, hash value, range value, old item)
    stream_lengths: dict[int, tuple[Any, int]] = {}
    snapshotted: set[tuple[int, str]] = set()

    def snapshot(table_name: str, key: dict[str, Any]) -> None:
        if table_name not in self.tables:
            return
        table = self.tables[table_name]
        if id(table) not in stream_lengths:
            shard = getattr(table, "stream_shard", None)
            stream_lengths[id(table)] = (shard, len(shard.items) if shard is not None else 0)
        try:
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (DynamoType(key[table.range_key_attr])
                           if table.range_key_attr is not None else None)
        except (KeyError, TypeError):
            return  # a malformed key fails validation before anything is written
        marker = (id(table), repr((hash_value, range_value)))
        if marker in snapshotted:
            return
        snapshotted.add(marker)
        old = table.get_item(hash_value, range_value)
        snapshots.append((table, hash_value, range_value, copy.deepcopy(old)))

    def rollback() -> None:
        for table, hash_value, range_value, old in reversed(snapshots):
            if range_value is None:
                if old is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = old
            else:
                bucket = table.items[hash_value]
                if old is None:
                    bucket.pop(range_value, None)
                    if not bucket:
                        table.items.pop(hash_value, None)
                else:
                    bucket[range_value] = old
        for shard, length in stream_lengths.values():
            if shard is not None and len(shard.items) > length:
                del shard.items[length:]

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[Any, Any, Any]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                key = _put_key(self.get_table(table_name), op["Item"])
            else:
                key = op["Key"]

            check_unicity(table_name, key)
            snapshot(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values)
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            conditions = {"condition_expression": condition_expression,
                          "expression_attribute_names": expression_attribute_names,
                          "expression_attribute_values": expression_attribute_values}
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **conditions)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **conditions)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"], **conditions)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - moto records any other failure as a reason
            errors.append((type(e).__name__, str(e), original_item))

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


def _now_millis() -> float:
    from moto.sqs import models as sqs_models

    return float(sqs_models.unix_time_millis())


def _visible_messages(queue: Any) -> list[Any]:
    """``Queue.messages``: visible and not delayed, with one clock read for the pass."""
    now = _now_millis()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed_count(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible_count(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if not now > m.visible_at)


def _visible_count(queue: Any) -> int:
    return len(_visible_messages(queue))


_QUEUE_PASSES = {"messages": _visible_messages, "approximate_number_of_messages": _visible_count,
                 "approximate_number_of_messages_delayed": _delayed_count,
                 "approximate_number_of_messages_not_visible": _not_visible_count}


def _queue_attributes(queue: Any, names: list[str]) -> dict[str, Any]:
    """``Queue.attributes`` restricted to ``names``: the same keys, values and rules, computing only those."""
    from moto.sqs.models import camelcase_to_underscores

    wanted = set(names)
    listed = list(queue.BASE_ATTRIBUTES)
    if queue.fifo_queue:
        listed += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        listed += queue.KMS_ATTRIBUTES
    result: dict[str, Any] = {}
    for attribute in listed:
        if attribute in wanted:
            result[attribute] = getattr(queue, camelcase_to_underscores(attribute))
    if "Policy" in wanted and queue.policy:
        result["Policy"] = queue.policy
    if "RedrivePolicy" in wanted and queue.redrive_policy:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}


def _get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    from moto.sqs.exceptions import InvalidAttributeName

    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All"] + queue.BASE_ATTRIBUTES + queue.FIFO_ATTRIBUTES + queue.KMS_ATTRIBUTES
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    if "All" in attribute_names:
        return dict(queue.attributes)
    computed = _queue_attributes(queue, attribute_names)
    return {name: computed[name] for name in attribute_names
            if name in computed and computed[name] is not None}

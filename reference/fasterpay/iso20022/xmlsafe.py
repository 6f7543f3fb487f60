"""A hardened XML parser for messages from outside: size first, then UTF-8, then XML without any DTD.

ISO 20022 messages are UTF-8 and never carry a DTD, so the parser refuses every ``<!DOCTYPE``: entity
expansion (billion laughs), external entities (XXE file reads, SSRF) and parameter entities are rejected
before anything is expanded or fetched. The byte limit is checked before the parser sees a byte.

Parsing uses :mod:`defusedxml` over the standard library's expat parser (``forbid_dtd``, ``forbid_entities``,
``forbid_external``); expat never loads external resources on its own. Comments and processing
instructions are dropped.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from .codes import ReasonCode
from .errors import InvalidPaymentError, MessageFormatError, MessageTooLargeError, Rejection, UnsafeXmlError

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "parse_xml"]

#: Largest message accepted, in bytes. A one-transaction pacs.008 is 2-5 KB; raise it for batch files.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024

_DECLARED_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _reject(error: type[MessageFormatError], message: str) -> MessageFormatError:
    return error([Rejection(ReasonCode.FF01, "/", message)])


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Element:
    """Parse untrusted message bytes into an element tree, or raise a :class:`MessageFormatError` (FF01).

    Raises :class:`MessageTooLargeError` over ``max_bytes`` (before parsing), :class:`UnsafeXmlError` for a
    DTD, entity or external reference, and :class:`MessageFormatError` for anything not well-formed UTF-8 XML.

    Examples:
        >>> parse_xml(b'<Document xmlns="urn:x"><A>1</A></Document>').tag
        '{urn:x}Document'
        >>> parse_xml(b'<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>')
        Traceback (most recent call last):
        ...
        fasterpay.iso20022.errors.UnsafeXmlError: message rejected: FF01 at /: the document declares a DTD...
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidPaymentError(f"pass the message as bytes, not {type(data).__name__} (encode str as UTF-8)")
    data = bytes(data)
    if len(data) > max_bytes:
        raise _reject(MessageTooLargeError, f"message is {len(data)} bytes; the limit is {max_bytes}")
    if not data.strip():
        raise _reject(MessageFormatError, "message is empty")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject(MessageFormatError, "message is not UTF-8; ISO 20022 XML messages are UTF-8") from None
    declared = _DECLARED_ENCODING.match(data)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise _reject(MessageFormatError, "the XML declaration names an encoding other than UTF-8")
    try:
        return SafeElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise _reject(
            UnsafeXmlError,
            "the document declares a DTD, entities or external references; ISO 20022 messages never do",
        ) from None
    except ParseError as exc:
        raise _reject(MessageFormatError, f"not well-formed XML ({exc})") from None

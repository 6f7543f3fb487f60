"""RFC 6962 Merkle tree hashes, inclusion and consistency proofs, and their verifiers.

Hashes follow RFC 6962 §2.1 exactly: a leaf is ``SHA-256(0x00 || entry)``, an interior node is
``SHA-256(0x01 || left || right)``, the empty tree is ``SHA-256("")``, and a tree of ``n`` leaves that
is not a power of two splits at the largest power of two smaller than ``n``. Proofs are generated with
the RFC's recursive ``PATH`` and ``SUBPROOF`` definitions (§2.1.1, §2.1.2) and verified with the
iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, which check a proof using hashes only.

:class:`MerkleTree` is incremental: it keeps the hash of every complete, aligned subtree (about two
hashes per leaf, in flat ``bytearray`` levels), so appending is amortised O(1) and any root, inclusion
proof or consistency proof for any earlier size costs O(log n) hashes. A million leaves take about
64 MB. Entries themselves are not kept: the tree needs only their leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ConsistencyProofError",
    "InclusionProofError",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_LEAF = b"\x00"
_NODE = b"\x01"
#: The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify; the message says which check failed."""


class InclusionProofError(ProofError):
    """An inclusion proof does not show that the leaf is in the tree with that root."""


class ConsistencyProofError(ProofError):
    """A consistency proof does not show that the newer tree extends the older one."""


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``.

    Examples:
        >>> leaf_hash(b"").hex()[:16]
        '6e340b9cffb37a98'
    """
    return hashlib.sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``.

    Examples:
        >>> len(node_hash(leaf_hash(b"a"), leaf_hash(b"b")))
        32
    """
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): RFC 6962's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree that answers for every size it has had.

    Examples:
        >>> tree = MerkleTree()
        >>> tree.extend([b"payment-1", b"payment-2", b"payment-3"])
        >>> proof = tree.inclusion_proof(1)
        >>> verify_inclusion(leaf_hash(b"payment-2"), 1, tree.size, proof, tree.root())
        >>> old_root = tree.root(2)
        >>> verify_consistency(2, 3, old_root, tree.root(), tree.consistency_proof(2))
    """

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        # _levels[k] holds, end to end, the hashes of the complete subtrees of 2**k leaves that start
        # at multiples of 2**k: level 0 is the leaf hashes.
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def append(self, entry: bytes) -> int:
        """Add one entry; returns its leaf index."""
        return self.append_leaf_hash(hashlib.sha256(_LEAF + entry).digest())

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Add a leaf whose hash is already known (for example, read back from storage)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, got {len(leaf)}")
        levels = self._levels
        levels[0] += leaf
        index = self._size
        self._size += 1
        level = 0
        current = leaf
        while index & 1:  # a right child completes its parent: hash the pair one level up
            row = levels[level]
            left = bytes(row[(index - 1) * HASH_SIZE:index * HASH_SIZE])
            current = hashlib.sha256(_NODE + left + current).digest()
            level += 1
            index >>= 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += current
        return self._size - 1

    def extend(self, entries: Iterable[bytes]) -> None:
        """Add entries in order (a batch)."""
        for entry in entries:
            self.append(entry)

    def leaf_hash(self, index: int) -> bytes:
        """The stored leaf hash at ``index``."""
        self._check_index(index, self._size)
        return bytes(self._levels[0][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (default: all of them)."""
        size = self._size if size is None else self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 ``PATH(index, D[size])``: the audit path from leaf ``index`` to the root."""
        size = self._size if size is None else self._check_size(size)
        self._check_index(index, size)
        return self._path(index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 ``PROOF(old_size, D[new_size])``; empty when the sizes are equal."""
        new_size = self._size if new_size is None else self._check_size(new_size)
        if not 0 < old_size <= new_size:
            raise ValueError(f"need 0 < old_size <= new_size, got {old_size} and {new_size}")
        if old_size == new_size:
            return []
        return self._subproof(old_size, 0, new_size, True)

    # -- internals: RFC 6962 §2.1 recursions over [start, end) ranges --------------------------------
    def _subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0:  # a complete subtree: ranges in the RFC recursion are always aligned
            level = n.bit_length() - 1
            offset = (start >> level) * HASH_SIZE
            return bytes(self._levels[level][offset:offset + HASH_SIZE])
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self._subtree(start + k, end)]
        return [*self._path(m - k, start + k, end), self._subtree(start, start + k)]

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self._subtree(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole), self._subtree(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._subtree(start, start + k)]

    def _check_size(self, size: int) -> int:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= self._size:
            raise ValueError(f"tree size must be a whole number from 0 to {self._size}, got {size!r}")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise IndexError(f"leaf index must be from 0 to {size - 1}, got {index!r}")


def root_of(entries: Sequence[bytes]) -> bytes:
    """``MTH(entries)`` computed directly from RFC 6962's recursive definition (a reference for tests).

    Examples:
        >>> root_of([]) == EMPTY_ROOT
        True
    """
    if not entries:
        return EMPTY_ROOT
    if len(entries) == 1:
        return leaf_hash(entries[0])
    k = _split(len(entries))
    return node_hash(root_of(entries[:k]), root_of(entries[k:]))


def _check_hashes(proof: Sequence[bytes], error: type[ProofError]) -> None:
    for i, h in enumerate(proof):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise error(f"proof element {i} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf *hash*) is at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Raises :class:`InclusionProofError` naming the failed check.

    Examples:
        >>> tree = MerkleTree(); tree.extend([b"a", b"b", b"c"])
        >>> verify_inclusion(leaf_hash(b"c"), 2, 3, tree.inclusion_proof(2), tree.root())
    """
    if isinstance(index, bool) or isinstance(size, bool) or not 0 <= index < size:
        raise InclusionProofError(f"leaf index {index} is not inside a tree of size {size}")
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        raise InclusionProofError(f"leaf hash and root must each have {HASH_SIZE} bytes")
    _check_hashes(proof, InclusionProofError)
    fn, sn = index, size - 1
    r = bytes(leaf)
    for p in proof:
        if sn == 0:
            raise InclusionProofError("the proof is longer than the path from this leaf to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionProofError("the proof is shorter than the path from this leaf to the root")
    if r != root:
        raise InclusionProofError("the proof leads to a different root: the leaf, index or root is wrong")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size`` with ``old_root``.

    RFC 9162 §2.1.4.2 (with ``0 < old_size``; equal sizes need an empty proof and equal roots).
    Raises :class:`ConsistencyProofError` naming the failed check.

    Examples:
        >>> tree = MerkleTree(); tree.extend([b"a", b"b", b"c"])
        >>> verify_consistency(1, 3, tree.root(1), tree.root(), tree.consistency_proof(1))
    """
    if isinstance(old_size, bool) or isinstance(new_size, bool) or not 0 < old_size <= new_size:
        raise ConsistencyProofError(
            f"need 0 < old size <= new size, got {old_size} and {new_size}: a log never shrinks")
    if len(old_root) != HASH_SIZE or len(new_root) != HASH_SIZE:
        raise ConsistencyProofError(f"roots must each have {HASH_SIZE} bytes")
    _check_hashes(proof, ConsistencyProofError)
    if old_size == new_size:
        if proof:
            raise ConsistencyProofError("equal sizes need an empty proof")
        if old_root != new_root:
            raise ConsistencyProofError("two different roots for the same size: the log forked")
        return
    if not proof:
        raise ConsistencyProofError("empty proof for different sizes")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is the first node
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofError("the proof is longer than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ConsistencyProofError("the proof is shorter than the trees need")
    if fr != old_root:
        raise ConsistencyProofError("the proof does not lead to the old root: the log was rewritten")
    if sr != new_root:
        raise ConsistencyProofError("the proof does not lead to the new root")

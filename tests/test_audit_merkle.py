"""RFC 6962 Merkle tree: the transparency-dev/merkle test vectors, exhaustive small trees, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterpay.audit.merkle import (
    EMPTY_ROOT,
    ConsistencyProofError,
    InclusionProofError,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# Test vectors from transparency-dev/merkle (proof/verify_test.go), originally certificate-transparency.
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


@pytest.fixture(scope="module")
def vector_tree() -> MerkleTree:
    tree = MerkleTree()
    tree.extend(LEAVES)
    return tree


def test_hashes_use_the_rfc_domain_separation() -> None:
    import hashlib

    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    assert MerkleTree().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(vector_tree: MerkleTree, size: int) -> None:
    assert vector_tree.root(size) == ROOTS[size - 1]
    assert root_of(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(vector_tree: MerkleTree, index: int, size: int,
                                                      proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert vector_tree.inclusion_proof(index, size) == expected
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(vector_tree: MerkleTree, old: int, new: int,
                                                        proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert vector_tree.consistency_proof(old, new) == expected
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], expected)


def _corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The probes transparency-dev uses: wrong index, size, leaf or root; garbage; flipped bits."""
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    yield "index - 1", (leaf, index - 1, size, proof, root)
    yield "index + 1", (leaf, index + 1, size, proof, root)
    yield "index ^ 2", (leaf, index ^ 2, size, proof, root)
    yield "size * 2", (leaf, index, size * 2, proof, root)
    yield "size // 2", (leaf, index, size // 2, proof, root)
    yield "wrong leaf", (leaf_hash(b"WrongLeaf"), index, size, proof, root)
    yield "empty root", (leaf, index, size, proof, EMPTY_ROOT)
    yield "random root", (leaf, index, size, proof, some)
    yield "trailing garbage", (leaf, index, size, [*proof, b""], root)
    yield "trailing root", (leaf, index, size, [*proof, root], root)
    yield "preceding garbage", (leaf, index, size, [b"", *proof], root)
    yield "preceding root", (leaf, index, size, [root, *proof], root)
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        yield f"flipped proof[{i}]", (leaf, index, size, flipped, root)
    if proof:
        yield "removed component", (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        yield "inserted component", (leaf, index, size, [proof[0], some, *proof[1:]], root)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_every_corrupted_inclusion_probe_is_refused(index: int, size: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    for desc, args in _corrupt_inclusion(index, size, hashes, ROOTS[size - 1], leaf_hash(LEAVES[index])):
        with pytest.raises(InclusionProofError):
            verify_inclusion(*args)
            pytest.fail(f"accepted: {desc}")


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_every_corrupted_consistency_probe_is_refused(old: int, new: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    probes = {
        "old - 1": (old - 1, new, r1, r2, hashes), "old + 1": (old + 1, new, r1, r2, hashes),
        "old ^ 2": (old ^ 2, new, r1, r2, hashes), "new * 2": (old, new * 2, r1, r2, hashes),
        "new // 2": (old, new // 2, r1, r2, hashes), "wrong old root": (old, new, leaf_hash(b"x"), r2, hashes),
        "wrong new root": (old, new, r1, leaf_hash(b"x"), hashes), "swapped roots": (old, new, r2, r1, hashes),
        "empty proof": (old, new, r1, r2, []), "trailing root": (old, new, r1, r2, [*hashes, r1]),
        "preceding root": (old, new, r1, r2, [r2, *hashes]), "truncated": (old, new, r1, r2, hashes[:-1]),
        "preceding proof[0]": (old, new, r1, r2, [hashes[0], *hashes]),
    }
    for i in range(len(hashes)):
        flipped = list(hashes)
        flipped[i] = bytes([hashes[i][0] ^ 16]) + hashes[i][1:]
        probes[f"flipped proof[{i}]"] = (old, new, r1, r2, flipped)
    for desc, args in probes.items():
        with pytest.raises(ConsistencyProofError):
            verify_consistency(*args)
            pytest.fail(f"accepted: {desc}")


def test_every_inclusion_and_consistency_proof_of_small_trees_verifies_and_binds() -> None:
    """Exhaustive up to 40 leaves: every leaf at every size, every pair of sizes."""
    entries = [f"entry-{i}".encode() for i in range(40)]
    tree = MerkleTree()
    tree.extend(entries)
    for n in range(1, 41):
        root = tree.root(n)
        assert root == root_of(entries[:n])
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            verify_inclusion(leaf_hash(entries[m]), m, n, proof, root)
            other = (m + 1) % n
            if other != m:
                with pytest.raises(InclusionProofError):
                    verify_inclusion(leaf_hash(entries[other]), m, n, proof, root)
        for old in range(1, n + 1):
            proof = tree.consistency_proof(old, n)
            verify_consistency(old, n, tree.root(old), root, proof)
            if old < n:
                with pytest.raises(ConsistencyProofError):
                    verify_consistency(old, n, leaf_hash(b"forged"), root, proof)


def test_a_forked_log_fails_consistency() -> None:
    honest, forked = MerkleTree(), MerkleTree()
    honest.extend([b"a", b"b", b"c", b"d", b"e"])
    forked.extend([b"a", b"b", b"X", b"d", b"e", b"f"])
    with pytest.raises(ConsistencyProofError, match="old root"):
        verify_consistency(5, 6, honest.root(), forked.root(), forked.consistency_proof(5))
    with pytest.raises(ConsistencyProofError, match="forked"):
        verify_consistency(5, 5, honest.root(), forked.root(5), [])


@pytest.mark.parametrize(("call", "error"), [
    (lambda t: t.inclusion_proof(5), IndexError),
    (lambda t: t.inclusion_proof(-1), IndexError),
    (lambda t: t.root(6), ValueError),
    (lambda t: t.consistency_proof(0), ValueError),
    (lambda t: t.consistency_proof(4, 3), ValueError),
    (lambda t: t.append_leaf_hash(b"short"), ValueError),
])
def test_bad_arguments_are_refused_with_a_clear_error(call, error) -> None:
    tree = MerkleTree()
    tree.extend([b"1", b"2", b"3", b"4", b"5"])
    with pytest.raises(error):
        call(tree)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=2, max_value=5000), data=st.data())
def test_proofs_verify_and_stay_logarithmic_on_large_trees(size: int, data: st.DataObject) -> None:
    tree = MerkleTree()
    for i in range(size):
        tree.append(i.to_bytes(4, "big"))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=1, max_value=size))
    proof = tree.inclusion_proof(index)
    assert len(proof) <= (size - 1).bit_length()
    verify_inclusion(leaf_hash(index.to_bytes(4, "big")), index, size, proof, tree.root())
    consistency = tree.consistency_proof(old)
    assert len(consistency) <= 2 * (size - 1).bit_length()
    verify_consistency(old, size, tree.root(old), tree.root(), consistency)
    changed = data.draw(st.integers(min_value=0, max_value=size - 1))
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf_hash(b"changed" + changed.to_bytes(4, "big")), changed, size,
                         tree.inclusion_proof(changed), tree.root())

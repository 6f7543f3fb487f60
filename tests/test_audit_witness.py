"""The tail of the log: every flush is signed, an unsigned tail is unverifiable (never intact, never
silently accepted), and a witness (the latest checkpoint an auditor holds from outside the writer's
control) catches a log cut back to an earlier checkpoint, or rewritten and re-signed with the log's key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from fasterpay.audit import (
    Checkpoint,
    LocalCheckpointSigner,
    MerkleTree,
    SignedCheckpoint,
    Witness,
    WitnessError,
    leaf_hash,
    sign_checkpoint,
    verify_export,
    write_export,
)
from fasterpay.audit.verify import main
from test_audit_verify import PEM, SIGNER, build_log, lines_of, recode, with_lines

# build_log(12, batch=3): four flushes, so segments [0,3) [3,6) [6,9) [9,12) and checkpoints 3, 6, 9, 12.
SIZES = (3, 6, 9, 12)


def note(size: int) -> str:
    return f"checkpoints/{size:012d}.note"


def cut_back(objects: dict[str, bytes], size: int) -> dict[str, bytes]:
    """What an attacker who can withhold objects hands over: the log as it was at checkpoint ``size``."""
    kept = {}
    for key, body in objects.items():
        folder, _, name = key.partition("/")
        end = int(name[13:25]) if folder == "segments" else int(name[:12])
        if end <= size:
            kept[key] = body
    return kept


def withhold(objects: dict[str, bytes], *sizes: int) -> dict[str, bytes]:
    return {k: v for k, v in objects.items() if k not in {note(s) for s in sizes}}


def relink(objects: dict[str, bytes], k: int, **changes: object) -> dict[str, bytes]:
    """Change entry ``k`` and re-link every later entry's ``prev``, so the hash chain holds again."""
    segments = [list(s) for s in lines_of(objects)]
    flat = [line for seg in segments for line in seg]
    flat[k] = recode(flat[k], **changes)
    for j in range(k + 1, len(flat)):
        flat[j] = recode(flat[j], prev=leaf_hash(flat[j - 1]).hex())
    out, it = [], iter(flat)
    for seg in segments:
        out.append([next(it) for _ in seg])
    return with_lines(objects, out)


def verify(objects: dict[str, bytes], where: Path, **kwargs):
    if where.exists():
        shutil.rmtree(where)
    return verify_export(write_export(where, objects), PEM, **kwargs)


@pytest.fixture(scope="module")
def genuine() -> dict[str, bytes]:
    return build_log(12)


@pytest.fixture(scope="module")
def latest(genuine: dict[str, bytes]) -> SignedCheckpoint:
    return SignedCheckpoint.from_text(genuine[note(12)])


# -- the writer leaves no unsigned tail ----------------------------------------------------------------
def test_a_closed_log_has_a_checkpoint_at_every_flush_and_no_unsigned_tail(genuine: dict[str, bytes],
                                                                           tmp_path: Path) -> None:
    assert sorted(k for k in genuine if k.startswith("checkpoints/")) == [note(s) for s in SIZES]
    report = verify(genuine, tmp_path / "x")
    assert report.intact and report.verdict == "intact" and report.unsigned_entries == 0
    assert report.tree_size == 12 and report.checkpoints == 4 and report.exit_status == 0


# -- an unsigned tail: unverifiable, never intact --------------------------------------------------------
def test_the_genuine_log_is_never_reported_worse_than_its_truncation(genuine: dict[str, bytes],
                                                                     latest: SignedCheckpoint, tmp_path: Path) -> None:
    """The issue's inversion: the genuine log with its last checkpoint withheld was NOT INTACT while the
    same log cut back to the last checkpoint was INTACT. Now the first is unverifiable (named, exit 3),
    the second is intact only with a warning that a witness is needed, and the witness settles both."""
    tail_unsigned = withhold(genuine, 12)
    report = verify(tail_unsigned, tmp_path / "a")
    assert report.verdict == "unverifiable" and not report.intact and report.exit_status == 3
    assert report.finding.check == "unsigned" and report.finding.entry == 9 and report.unsigned_entries == 3
    assert str(report).startswith("UNVERIFIABLE: entry 9: the last 3 entries, 9 to 11, come after the last checkpoint")

    truncated = cut_back(genuine, 9)
    alone = verify(truncated, tmp_path / "b")
    assert alone.intact and "no witness given" in str(alone)  # self-consistent: only a witness can tell

    witness = Witness.of(latest)
    assert verify(tail_unsigned, tmp_path / "c", witness=witness).verdict == "intact"  # the witness vouches
    caught = verify(truncated, tmp_path / "d", witness=witness)
    assert caught.verdict == "not-intact" and caught.finding.check == "trusted" and caught.finding.entry == 9
    assert "cut back (truncated)" in caught.finding.reason


def test_a_changed_and_relinked_unsigned_tail_is_never_called_intact(genuine: dict[str, bytes],
                                                                      latest: SignedCheckpoint, tmp_path: Path) -> None:
    """Entries 6 to 11 unsigned (checkpoints 9 and 12 withheld); entry 10 changed and the chain re-linked.
    Nothing can tell the change apart from the original, so neither is vouched for; the witness can."""
    forged = relink(withhold(genuine, 9, 12), 10, outcome="RJCT")
    assert forged != withhold(genuine, 9, 12)
    for allow in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            report = verify(forged, tmp_path / f"x{allow}", allow_unsigned_tail=allow)
        assert not report.intact and report.verdict == "unverifiable" and report.finding.entry == 6
        assert report.tree_size == 6 and report.unsigned_entries == 6
    caught = verify(forged, tmp_path / "w", witness=Witness.of(latest))
    assert caught.verdict == "not-intact" and caught.finding.check == "trusted"


# -- the witness -------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES[:-1])
def test_a_witness_catches_a_log_cut_back_to_any_earlier_checkpoint(genuine: dict[str, bytes], tmp_path: Path,
                                                                     size: int) -> None:
    witness = verify(genuine, tmp_path / "g").witness()  # what the auditor kept from the last verification
    assert witness == Witness(12, SignedCheckpoint.from_text(genuine[note(12)]).root_hash, "bank-a/audit")
    truncated = cut_back(genuine, size)
    assert verify(truncated, tmp_path / "t").intact
    report = verify(truncated, tmp_path / "w", witness=witness)
    assert not report.intact and report.verdict == "not-intact" and report.finding.entry == size
    assert f"vouches for 12 entries but the export holds {size}" in report.finding.reason


def test_a_rewritten_log_re_signed_with_the_logs_key_fails_against_the_witness(genuine: dict[str, bytes],
                                                                                tmp_path: Path) -> None:
    """Threat T3: whoever holds kms:Sign rewrites entry 4 and signs fresh checkpoints. The export is
    consistent with itself and with the key; only a witness from before the rewrite shows the fork."""
    rewritten = relink(build_log(12), 4, outcome="RJCT")
    tree = MerkleTree()
    for line in (line for seg in lines_of(rewritten) for line in seg):
        tree.append(line)
    for size in SIZES:
        old = SignedCheckpoint.from_text(rewritten[note(size)]).checkpoint
        rewritten[note(size)] = sign_checkpoint(
            SIGNER, Checkpoint(old.origin, size, tree.root(size), old.timestamp)).to_text().encode()
    assert verify(rewritten, tmp_path / "a").intact
    for seen in (6, 12):  # any witness taken after entry 4 was written
        witness = Witness.of(SignedCheckpoint.from_text(genuine[note(seen)]))
        report = verify(rewritten, tmp_path / f"w{seen}", witness=witness)
        assert report.verdict == "not-intact" and report.finding.check == "trusted"
        assert "rewritten or forked" in report.finding.reason
        assert "the checkpoint at size 12 does not extend it" in report.finding.reason
    stale = Witness.of(SignedCheckpoint.from_text(genuine[note(3)]))  # taken before entry 4 existed: the limit
    assert verify(rewritten, tmp_path / "stale", witness=stale).intact


def test_a_witness_must_be_of_this_log_and_signed_by_its_key(genuine: dict[str, bytes], latest: SignedCheckpoint,
                                                             tmp_path: Path) -> None:
    other_origin = Witness(12, latest.root_hash, "bank-b/audit")
    report = verify(genuine, tmp_path / "a", witness=other_origin)
    assert report.finding.check == "trusted" and "bank-b/audit" in report.finding.reason
    forged = SignedCheckpoint(latest.checkpoint, latest.key_id, LocalCheckpointSigner.generate().sign(b"x"))
    report = verify(genuine, tmp_path / "b", witness=forged)
    assert report.finding.check == "trusted" and "does not verify" in report.finding.reason
    assert verify(genuine, tmp_path / "c", trusted_checkpoint=latest).witness_size == 12  # the old name
    with pytest.raises(TypeError, match="not both"):
        verify(genuine, tmp_path / "d", witness=latest, trusted_checkpoint=latest)


def test_a_report_round_trips_as_a_witness(genuine: dict[str, bytes], latest: SignedCheckpoint,
                                           tmp_path: Path) -> None:
    report = verify(genuine, tmp_path / "a")
    assert Witness.parse(report.to_json()) == report.witness() == Witness.of(latest)
    assert Witness.parse(latest.to_text()) == Witness.parse(Witness.of(latest).to_json())
    unverifiable = verify(withhold(genuine, 12), tmp_path / "b")
    assert Witness.parse(unverifiable.to_json()).tree_size == 9  # vouches for what was signed
    broken = verify({**genuine, note(12): b"garbage"}, tmp_path / "c")
    assert broken.witness() is None
    with pytest.raises(WitnessError, match="not intact"):
        Witness.parse(broken.to_json())


@pytest.mark.parametrize("text, words", [
    ("", "neither JSON nor"),
    ("{", "not valid JSON"),
    ("[1, 2]", "needs tree_size and root_hash"),
    ('{"tree_size": 3, "root_hash": "AAAA"}', "32"),
    ('{"tree_size": 3, "root_hash": 7}', "32-byte root"),
    ('{"tree_size": -1, "root_hash": "' + "A" * 43 + '="}', "whole number"),
    ('{"tree_size": true, "root_hash": "' + "A" * 43 + '="}', "whole number"),
    ('{"tree_size": 3, "root_hash": "' + "A" * 43 + '=", "origin": 5}', "origin"),
])
def test_an_unreadable_witness_is_a_named_error(text: str, words: str) -> None:
    with pytest.raises(WitnessError, match=words):
        Witness.parse(text)


# -- the command line ----------------------------------------------------------------------------------
def test_the_command_takes_a_witness_and_says_unverifiable_with_its_own_exit_status(
        genuine: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(PEM)
    ok = write_export(tmp_path / "ok", genuine)
    assert main([str(ok), "--public-key", str(key), "--json"]) == 0
    kept = tmp_path / "last-report.json"
    kept.write_text(capsys.readouterr().out)  # the auditor keeps this, outside the writer's reach
    assert json.loads(kept.read_text())["verdict"] == "intact"

    assert main([str(ok), "--public-key", str(key), "--witness", str(kept)]) == 0
    assert "extends the witness at size 12" in capsys.readouterr().out
    cut = write_export(tmp_path / "cut", cut_back(genuine, 6))
    assert main([str(cut), "--public-key", str(key)]) == 0
    assert "no witness given" in capsys.readouterr().out
    assert main([str(cut), "--public-key", str(key), "--witness", str(kept)]) == 1
    assert capsys.readouterr().out.startswith("NOT INTACT: entry 6: the witness vouches for 12 entries")
    (tmp_path / "latest.note").write_bytes(genuine[note(12)])
    assert main([str(cut), "--public-key", str(key), "--trusted-checkpoint", str(tmp_path / "latest.note")]) == 1
    capsys.readouterr()

    tail = write_export(tmp_path / "tail", withhold(genuine, 12))
    assert main([str(tail), "--public-key", str(key), "--allow-unsigned-tail", "--json"]) == 3
    out = capsys.readouterr()
    assert json.loads(out.out)["verdict"] == "unverifiable" and "has no effect" in out.err
    (tmp_path / "bad.json").write_text('{"tree_size": 1}')
    assert main([str(ok), "--public-key", str(key), "--witness", str(tmp_path / "bad.json")]) == 2
    assert main([str(ok), "--public-key", str(key), "--witness", str(tmp_path / "missing.json")]) == 2
    assert "cannot verify" in capsys.readouterr().err


def test_the_package_runs_the_verifier_with_or_without_the_word_verify(genuine: dict[str, bytes],
                                                                       tmp_path: Path) -> None:
    folder = write_export(tmp_path / "ok", genuine)
    (tmp_path / "key.pem").write_bytes(PEM)
    for words in (["verify"], []):
        done = subprocess.run([sys.executable, "-m", "fasterpay.audit", *words, str(folder), "--public-key",
                               str(tmp_path / "key.pem")], capture_output=True, text=True, check=False)
        assert done.returncode == 0 and done.stdout.startswith("intact: 12 entries"), done.stderr

"""Tests for sitebuild.diagrams: rendering diagram scripts to PNG, with a content cache."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sitebuild import diagrams as render
from sitebuild.diagrams import (
    STAMP_FILE,
    DiagramError,
    GraphvizMissingError,
    graphviz_available,
    render_all,
    render_diagram,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

needs_graphviz = pytest.mark.skipif(not graphviz_available(),
                                    reason="Graphviz `dot` is not installed")

# A tiny diagram script that also counts its runs in a file next to itself.
TINY = textwrap.dedent(
    """\
    import sys
    from pathlib import Path

    from diagrams import Cluster, Diagram, Edge
    from diagrams.aws.compute import Lambda
    from diagrams.aws.integration import SQS

    counter = Path(__file__).with_suffix(".runs")
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    with Diagram("tiny", filename=sys.argv[1], show=False, outformat="png"):
        with Cluster("account"):
            Lambda("ingest") >> Edge(label="pacs.008") >> SQS("queue")
    """
)


def runs(script: Path) -> int:
    counter = script.with_suffix(".runs")
    return int(counter.read_text()) if counter.exists() else 0


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "diagrams"
    folder.mkdir()
    (folder / "tiny.py").write_text(TINY)
    return folder


@needs_graphviz
def test_render_diagram_writes_a_png(src: Path, tmp_path: Path) -> None:
    out = render_diagram(src / "tiny.py", tmp_path / "out" / "tiny.png")
    assert out == tmp_path / "out" / "tiny.png"
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in out.parent.iterdir()] == ["tiny.png"]  # no temp files left


@needs_graphviz
def test_render_all_skips_unchanged_scripts(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    assert render_all(src, out_dir) == [out_dir / "tiny.png"]
    assert runs(src / "tiny.py") == 1
    stamps = json.loads((out_dir / STAMP_FILE).read_text())
    assert set(stamps) == {"tiny.py"}

    assert render_all(src, out_dir) == []  # cache hit: the script does not run
    assert runs(src / "tiny.py") == 1


@needs_graphviz
def test_render_all_rerenders_a_changed_script(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    render_all(src, out_dir)
    (src / "tiny.py").write_text(TINY.replace('"ingest"', '"ingest lambda"'))
    assert render_all(src, out_dir) == [out_dir / "tiny.png"]
    assert runs(src / "tiny.py") == 2


@needs_graphviz
def test_render_all_rerenders_when_a_shared_helper_changes(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    (src / "_style.py").write_text("NODE_ATTR = {}\n")
    render_all(src, out_dir)
    (src / "_style.py").write_text("NODE_ATTR = {'fontsize': '14'}\n")  # the shared style changed
    assert render_all(src, out_dir) == [out_dir / "tiny.png"]
    assert runs(src / "tiny.py") == 2


@needs_graphviz
def test_render_all_rerenders_when_the_png_is_missing(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    render_all(src, out_dir)
    (out_dir / "tiny.png").unlink()
    assert render_all(src, out_dir) == [out_dir / "tiny.png"]
    assert runs(src / "tiny.py") == 2


@needs_graphviz
def test_render_all_rerenders_when_the_renderer_version_changes(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "out"
    render_all(src, out_dir)
    monkeypatch.setattr(render, "RENDERER_VERSION", "sitebuild.diagrams/test")
    assert render_all(src, out_dir) == [out_dir / "tiny.png"]


@needs_graphviz
def test_damaged_stamp_file_means_render_again(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    render_all(src, out_dir)
    (out_dir / STAMP_FILE).write_text("{not json")
    assert render_all(src, out_dir) == [out_dir / "tiny.png"]


def test_helper_modules_are_not_rendered(tmp_path: Path) -> None:
    folder = tmp_path / "diagrams"
    folder.mkdir()
    (folder / "_style.py").write_text("raise SystemExit('helpers are not diagrams')\n")
    assert render_all(folder, tmp_path / "out") == []


@needs_graphviz
def test_failing_script_raises_with_its_stderr(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('no such node: Lambada', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(DiagramError, match="exit code 3") as info:
        render_diagram(script, tmp_path / "broken.png")
    assert "no such node: Lambada" in info.value.stderr
    assert "no such node: Lambada" in str(info.value)
    assert not (tmp_path / "broken.png").exists()


@needs_graphviz
def test_script_that_writes_nothing_raises(tmp_path: Path) -> None:
    script = tmp_path / "silent.py"
    script.write_text("print('forgot to draw')\n")
    with pytest.raises(DiagramError, match="wrote no silent.png"):
        render_diagram(script, tmp_path / "silent.png")


@needs_graphviz
def test_failed_render_keeps_the_previous_png(src: Path, tmp_path: Path) -> None:
    out = render_diagram(src / "tiny.py", tmp_path / "tiny.png")
    before = out.read_bytes()
    (src / "tiny.py").write_text("raise RuntimeError('edited badly')\n")
    with pytest.raises(DiagramError, match="edited badly"):
        render_diagram(src / "tiny.py", out)
    assert out.read_bytes() == before


@needs_graphviz
def test_render_all_reports_every_failure_and_keeps_good_renders(
    src: Path, tmp_path: Path
) -> None:
    (src / "a_broken.py").write_text("raise RuntimeError('first failure')\n")
    (src / "z_broken.py").write_text("raise RuntimeError('second failure')\n")
    out_dir = tmp_path / "out"
    with pytest.raises(DiagramError, match="2 diagram scripts failed") as info:
        render_all(src, out_dir)
    assert "first failure" in info.value.stderr and "second failure" in info.value.stderr
    assert (out_dir / "tiny.png").is_file()
    assert set(json.loads((out_dir / STAMP_FILE).read_text())) == {"tiny.py"}


def test_missing_script_raises(tmp_path: Path) -> None:
    with pytest.raises(DiagramError, match="no such diagram script"):
        render_diagram(tmp_path / "absent.py", tmp_path / "absent.png")


def test_missing_source_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DiagramError, match="no such folder"):
        render_all(tmp_path / "absent", tmp_path / "out")


def test_output_must_be_png(src: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end in \.png"):
        render_diagram(src / "tiny.py", tmp_path / "tiny.svg")


def test_missing_graphviz_gives_the_install_command(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert graphviz_available() is False
    with pytest.raises(GraphvizMissingError) as info:
        render_all(src, tmp_path / "out")
    message = str(info.value)
    assert "sudo apt-get install -y graphviz" in message
    assert "brew install graphviz" in message
    assert isinstance(info.value, DiagramError)


@needs_graphviz
@pytest.mark.parametrize("script", sorted((REPO_ROOT / "diagrams").glob("[!_]*.py")),
                         ids=lambda p: p.stem)
def test_repository_diagrams_render(script: Path, tmp_path: Path) -> None:
    out = render_diagram(script, tmp_path / f"{script.stem}.png")
    assert out.read_bytes().startswith(PNG_MAGIC)

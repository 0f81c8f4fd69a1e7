"""Every line mlgen prints is safe for a terminal, and every chart is valid XML, whatever
names a batch, a file or a timeline holds."""

from __future__ import annotations

import random
import xml.dom.minidom
from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlgen import gantt, terminal
from mlgen.cli.app import app
from mlgen.timeline import JobRecord, PodRecord, Timeline

from .conftest import batch_doc

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # writes the clipboard
ERASE = "\x1b[2K\r"  # erases the line
BIDI = "\u202e"


def test_safe_escapes_every_control_and_keeps_text() -> None:
    assert terminal.safe(f"a{OSC52}b") == "a\\x1b]52;c;ZWNobyBwd25lZA==\\x07b"
    assert terminal.safe(f"{ERASE}x{BIDI}") == "\\x1b[2K\\x0dx\\u202e"
    assert terminal.safe("tab\tnew\nline: ünïcødé ✓") == "tab\tnew\nline: ünïcødé ✓"
    rng = random.Random(5)
    for _ in range(200):
        text = "".join(chr(rng.randrange(0, 0x2100)) for _ in range(40))
        shown = terminal.safe(text)
        assert not any(
            (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or c == BIDI
            for c in shown
        )


def test_an_error_naming_a_hostile_key_and_file_prints_no_control_sequence(tmp_path: Path) -> None:
    doc = batch_doc()
    doc["spec"]["defaults"][f"imag{OSC52}e"] = "x"
    path = tmp_path / f"batch{ERASE}.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code != 0
    assert "\x1b" not in result.output and "\r" not in result.output, repr(result.output)
    assert "\\x1b]52" in result.output


def test_validate_expand_prints_emoji_shortcodes_as_written(tmp_path: Path) -> None:
    doc = batch_doc()
    doc["spec"]["jobs"][0]["args"] = [":smile:"]
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["validate", "--expand", str(path)])
    assert result.exit_code == 0, result.output
    assert ":smile:" in result.output and "😄" not in result.output


def test_a_chart_of_hostile_names_is_valid_svg() -> None:
    name = f"step{OSC52}\x00\x01<&>"
    timeline = Timeline(
        batch=f"b{BIDI}",
        variant="sequential",
        namespace="ns",
        origin="",
        jobs=[JobRecord(name=name, step=name, wave=0, status="Complete", start=0.0, end=2.0)],
        pods=[
            PodRecord(
                name=f"p{ERASE}",
                job=name,
                index=None,
                attempt=1,
                node="n",
                phase="Succeeded",
                start=0.0,
                end=2.0,
                exit_code=0,
                step=name,
            )
        ],
        resolution=0.25,
    )
    text = gantt.svg(timeline)
    xml.dom.minidom.parseString(text)  # raises on a control character
    assert "\\x1b" in text

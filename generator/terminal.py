"""Text safe to print to a terminal: every line mlgen prints goes through `safe`.

Batch files, YAML keys, file names and timelines are input, and a terminal obeys control
sequences in what it prints: an OSC 52 sequence writes the clipboard, CSI sequences erase
lines or move the cursor, and bidirectional overrides reorder what a reader sees. `safe`
shows each such character as an escape (`\\x1b`, `\\u202e`) and keeps newlines and tabs.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional controls.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every control character shown as an escape, newlines and tabs kept."""
    return _UNSAFE.sub(_escape, text)

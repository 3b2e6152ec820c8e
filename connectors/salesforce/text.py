"""Case text as a customer wrote it: quoted replies, signatures and
disclaimers trimmed where they can be recognised."""

from __future__ import annotations

import re

_REPLY_HEADER = re.compile(
    r"^(On .{3,200} wrote:|-----\s*Original Message\s*-----|From: .+)$", re.I
)
_DISCLAIMER = re.compile(
    r"^(this (e-?mail|message)( and any attachments)? (is|are|may be) "
    r"(confidential|intended)|confidentiality notice|disclaimer:)",
    re.I,
)
_SIGN_OFF = re.compile(r"^(--|__|sent from my \w+)\s*$", re.I)


def case_text(values: list[str | None]) -> str:
    """Join the configured fields (Subject, Description, ...) and trim email."""
    kept: list[str] = []
    for value in values:
        if not value:
            continue
        lines = []
        for line in value.replace("\r\n", "\n").split("\n"):
            stripped = line.strip()
            if _REPLY_HEADER.match(stripped) or _DISCLAIMER.match(stripped):
                break  # what follows is the quoted thread or boilerplate
            if _SIGN_OFF.match(stripped):
                break
            if stripped.startswith(">"):
                continue
            lines.append(stripped)
        text = "\n".join(line for line in lines if line).strip()
        if text:
            kept.append(text)
    return "\n".join(kept)

"""Sentence segmentation with code-point offsets.

A rule-based splitter is enough here: it only decides where long texts are cut
into model windows and which spans the ``sentences`` option reports. It never
drops characters: every non-whitespace character lies in exactly one span.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(
    r"""
    (?:[.!?\u2026\u3002\uff01\uff1f]+["')\]\u201d\u2019]*)   # terminal punctuation
    (?=\s|$)                                                # followed by space/end
    |\n\s*\n                                                # or a blank line
    """,
    re.VERBOSE,
)
_CJK_END = re.compile(r"[\u3002\uff01\uff1f]+")

Span = tuple[int, int]


def split_sentences(text: str) -> list[Span]:
    """Split ``text`` into sentence spans.

    Args:
        text: Any string.

    Returns:
        ``(start, end)`` code-point offsets, in order, each stripped of
        surrounding whitespace and non-empty. Empty for whitespace-only text.
    """
    cuts = [0]
    for match in _SENTENCE_END.finditer(text):
        cuts.append(match.end())
    # CJK full stops end a sentence even without a following space.
    for match in _CJK_END.finditer(text):
        cuts.append(match.end())
    cuts.append(len(text))
    bounds = sorted(set(cuts))
    spans: list[Span] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans

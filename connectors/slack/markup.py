"""Slack markup to plain text the model can score.

Slack sends ``<@U123>`` mentions, ``<#C123|general>`` channels,
``<https://x.y|label>`` links, ``<!here>`` broadcasts, ``:emoji:`` shortcodes,
``&amp;``-escaped ``&<>`` and ``` code blocks. Mentions and links become
neutral placeholders or their labels, code goes, and emoji that carry
sentiment become the words they stand for.
"""

from __future__ import annotations

import re

EMOJI_WORDS: dict[str, str] = {
    # positive
    "smile": "happy",
    "smiley": "happy",
    "grinning": "happy",
    "grin": "happy",
    "joy": "delighted",
    "laughing": "delighted",
    "heart": "love",
    "heart_eyes": "love",
    "tada": "great",
    "raised_hands": "great",
    "clap": "well done",
    "+1": "good",
    "thumbsup": "good",
    "ok_hand": "good",
    "star_struck": "amazing",
    "pray": "thanks",
    "white_check_mark": "done",
    "rocket": "great",
    "fire": "great",
    "100": "perfect",
    "slightly_smiling_face": "good",
    "blush": "happy",
    "muscle": "strong",
    # negative
    "-1": "bad",
    "thumbsdown": "bad",
    "angry": "angry",
    "rage": "furious",
    "cry": "sad",
    "sob": "very sad",
    "disappointed": "disappointed",
    "confused": "confused",
    "worried": "worried",
    "scream": "terrible",
    "face_with_symbols_on_mouth": "furious",
    "broken_heart": "heartbroken",
    "pensive": "sad",
    "weary": "exhausted",
    "tired_face": "tired",
    "unamused": "annoyed",
    "facepalm": "frustrated",
    "x": "failed",
    "warning": "problem",
    "rotating_light": "alarm",
    "skull": "terrible",
}
"""Shortcodes that carry sentiment -> words; other shortcodes are dropped."""

_CODE_BLOCK = re.compile(r"```.*?```", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_USER = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#C[A-Z0-9]+(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(?:here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|([^>]*))?>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+)(?:::skin-tone-\d)?:")
_SPACES = re.compile(r"[ \t]+")


def _emoji(match: re.Match[str]) -> str:
    word = EMOJI_WORDS.get(match.group(1))
    return f" {word} " if word else " "


def normalise(text: str) -> str:
    """Plain text for scoring; may be empty (then the message is skipped)."""
    text = _CODE_BLOCK.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _USER.sub("@someone", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1) or 'channel'}", text)
    text = _SPECIAL.sub("@everyone", text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@team", text)
    text = _DATE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(2) or "link", text)
    text = _EMOJI.sub(_emoji, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()

"""Reading a job's input: a JSON list of texts, or an uploaded JSONL/CSV file.

Every record becomes a ``JobInput``: its text (or whatever stood there) and
the caller's ``id`` if it gave one. A record whose text is unusable is kept
and answered with an error entry; a file that cannot be read at all is refused
whole with ``invalid_file`` and the line that broke it.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from core.errors import BatchTooLarge, InvalidFile, InvalidRequest

MAX_ITEMS = 100_000
"""Texts in one job."""

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Largest uploaded file."""

MAX_ID_CHARS = 255
"""Longest ``id`` carried through."""

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class JobInput:
    """One record: the value found as its text and the caller's id."""

    text: object
    external_id: str | None = None


def _check_count(n: int) -> None:
    if n > MAX_ITEMS:
        raise BatchTooLarge(
            f"A job holds at most {MAX_ITEMS:,} texts; got more.", field="texts"
        )


def _check_id(value: object, where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequest(f"The id {where} must be a string.", field="ids")
    text = str(value)
    if len(text) > MAX_ID_CHARS:
        raise InvalidRequest(
            f"The id {where} is longer than {MAX_ID_CHARS} characters.", field="ids"
        )
    # Stored and echoed back: no NUL (PostgreSQL refuses it), no lone
    # surrogates (not encodable), no other control characters.
    if any(ord(c) < 32 or ord(c) == 127 for c in text) or not _encodable(text):
        raise InvalidRequest(
            f"The id {where} holds a control character or invalid Unicode.",
            field="ids",
        )
    return text


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def from_lists(texts: object, ids: object = None) -> list[JobInput]:
    """Records from a JSON body's ``texts`` (and optional ``ids``).

    Raises:
        InvalidRequest: ``texts`` is not a non-empty list, ``ids`` does not
            match it.
        BatchTooLarge: More than ``MAX_ITEMS`` texts.
    """
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest(
            "'texts' must be a non-empty list of strings.", field="texts"
        )
    _check_count(len(texts))
    if ids is None:
        return [JobInput(t) for t in texts]
    if not isinstance(ids, list) or len(ids) != len(texts):
        raise InvalidRequest("'ids' must be a list as long as 'texts'.", field="ids")
    return [
        JobInput(t, _check_id(i, f"at index {n}"))
        for n, (t, i) in enumerate(zip(texts, ids, strict=True))
    ]


def detect_format(filename: str, content_type: str, given: str | None) -> str:
    """``jsonl`` or ``csv``, from the ``format`` field, the name or the type.

    Raises:
        InvalidFile: None of them says.
    """
    if given:
        if given not in FORMATS:
            raise InvalidFile("'format' must be 'jsonl' or 'csv'.", field="format")
        return given
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson")) or "ndjson" in content_type:
        return "jsonl"
    if name.endswith(".csv") or "csv" in content_type:
        return "csv"
    raise InvalidFile(
        "Name the file *.jsonl or *.csv, or say 'format' (jsonl or csv).",
        field="format",
    )


def _text_lines(stream: IO[bytes]) -> Iterator[str]:
    reader = codecs.getreader("utf-8-sig")(stream, "strict")
    try:
        yield from reader
    except UnicodeDecodeError as exc:
        raise InvalidFile("The file is not UTF-8 text.", field="file") from exc


def from_jsonl(
    stream: IO[bytes], *, text_field: str = "text", id_field: str = "id"
) -> list[JobInput]:
    """Records from JSON Lines: an object per line (or a bare string).

    Blank lines are skipped. Raises ``InvalidFile`` naming the first line that
    is not JSON or not an object/string.
    """
    out: list[JobInput] = []
    for number, line in enumerate(_text_lines(stream), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise InvalidFile(
                f"Line {number} is not valid JSON.", field="file"
            ) from exc
        if isinstance(record, str):
            out.append(JobInput(record))
        elif isinstance(record, dict):
            if text_field not in record:
                raise InvalidFile(
                    f"Line {number} has no {text_field!r} field.", field="file"
                )
            ext = _check_id(record.get(id_field), f"on line {number}")
            out.append(JobInput(record[text_field], ext))
        else:
            raise InvalidFile(
                f"Line {number} must be a JSON object or string.", field="file"
            )
        _check_count(len(out))
    if not out:
        raise InvalidFile("The file holds no records.", field="file")
    return out


def from_csv(
    stream: IO[bytes], *, text_field: str = "text", id_field: str = "id"
) -> list[JobInput]:
    """Records from CSV with a header row naming the text (and id) column."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.DictReader(text, strict=True)
        header: Sequence[str] = reader.fieldnames or []
        repeated = sorted({c for c in header if list(header).count(c) > 1})
        if repeated:
            raise InvalidFile(
                f"The CSV header names {', '.join(repeated)[:200]} more than once.",
                field="file",
            )
        if text_field not in header:
            raise InvalidFile(
                f"The CSV header has no {text_field!r} column "
                f"(it has: {', '.join(header)[:200]}). Say 'text_column'.",
                field="text_column",
            )
        out: list[JobInput] = []
        for row in reader:
            ext = _check_id(row.get(id_field), f"on line {reader.line_num}")
            out.append(JobInput(row.get(text_field), ext))
            _check_count(len(out))
    except UnicodeDecodeError as exc:
        raise InvalidFile("The file is not UTF-8 text.", field="file") from exc
    except csv.Error as exc:
        raise InvalidFile(f"The CSV cannot be read: {exc}.", field="file") from exc
    finally:
        text.detach()
    if not out:
        raise InvalidFile("The file holds no records.", field="file")
    return out

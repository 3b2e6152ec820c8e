"""The scoring engine: an int8 ONNX encoder served with onnxruntime.

A ``Scorer`` loads a model directory once (``model.onnx``, ``tokenizer.json``,
``model.json``) and scores many texts per ONNX call. Texts longer than the
model's window are never cut: they are split on sentence boundaries, packed
into windows, each window is scored and the probabilities are averaged,
weighted by the characters each window covers.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from core.errors import ExplainTooLong, TextEmpty, TextTooLong, TooManySentences
from core.scoring.labels import LABEL_ORDER, Sentiment
from core.scoring.segment import Span, split_sentences

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")

MAX_TEXT_CHARS = 100_000
"""Longest text accepted, in code points."""

MIXED_CONFIDENCE = 0.75
"""A text is ``mixed`` when one segment is positive and another negative, each
with at least this probability."""

MIXED_MAX_SENTENCES = 20
"""Up to this many sentences, the mixed rule looks at sentences; beyond it, at the
text's windows (scoring thousands of sentences one by one would be slow)."""

SENTENCES_MAX = 1000
"""Most sentences a text may have when ``sentences`` is asked for."""

EXPLAIN_MAX_WORDS = 64
"""Longest text (in whitespace-separated words) that ``explain`` accepts."""

MAX_BATCH_TOKENS = 1024
"""Padded tokens per ONNX call: 32 short texts, or 8 full 128-token windows.
Bigger calls were no faster and lifted peak memory from 180 to 310 MB."""

DEFAULT_BATCH_SIZE = 32
"""Windows per ONNX call; windows are sorted by length so padding stays small."""


@dataclass(frozen=True)
class SentenceResult:
    """The score of one sentence of a text, with code-point offsets."""

    start: int
    end: int
    text: str
    label: Sentiment
    score: float
    confidence: dict[str, float]


@dataclass(frozen=True)
class WordWeight:
    """A word's contribution to a text's score (occlusion), code-point offsets.

    Positive weights pushed the text towards positive, negative ones towards
    negative; the unit is the score scale, [-2, 2] in theory, small in practice.
    """

    start: int
    end: int
    text: str
    weight: float


@dataclass(frozen=True)
class SentimentResult:
    """The score of one text.

    Attributes:
        label: The most probable label, or ``mixed`` (see ``score_batch``).
        score: ``p_positive - p_negative``, in [-1, 1].
        confidence: Probability of each label (sums to 1).
        coverage: Share of the text's non-whitespace characters that were
            scored (1.0 unless some characters produce no tokens at all).
        model: ``name-version`` of the model that scored it.
        sentences: Per-sentence results when asked for, else ``None``.
    """

    label: Sentiment
    score: float
    confidence: dict[str, float]
    coverage: float
    model: str
    sentences: list[SentenceResult] | None = field(default=None)
    explanation: list[WordWeight] | None = field(default=None)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, as the API returns it (``sentences`` only if asked)."""
        out: dict[str, object] = {
            "label": self.label.value,
            "score": self.score,
            "confidence": self.confidence,
            "coverage": self.coverage,
            "model": self.model,
        }
        if self.sentences is not None:
            out["sentences"] = [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "label": s.label.value,
                    "score": s.score,
                    "confidence": s.confidence,
                }
                for s in self.sentences
            ]
        if self.explanation is not None:
            out["explanation"] = [
                {"start": w.start, "end": w.end, "text": w.text, "weight": w.weight}
                for w in self.explanation
            ]
        return out


@dataclass
class _Window:
    owner: int  # index of the text (or sentence) it belongs to
    ids: list[int]
    chars: int  # non-whitespace characters it covers


def clean_text(text: str) -> str:
    """Validate a text and make it safe to tokenize.

    Lone UTF-16 surrogates (valid in JSON, not in UTF-8) become U+FFFD, one
    for one, so code-point offsets are unchanged.

    Args:
        text: The raw text.

    Returns:
        The text, with lone surrogates replaced.

    Raises:
        TextEmpty: The text is empty or whitespace only.
        TextTooLong: The text has more than ``MAX_TEXT_CHARS`` code points.
    """
    if not text.strip():
        raise TextEmpty("Text is empty or whitespace only.", field="text")
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLong(
            f"Text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}.",
            field="text",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def check_text(text: str, *, explain: bool = False, sentences: bool = False) -> str:
    """``clean_text`` plus the limits of the options, for per-item validation.

    Raises:
        TextEmpty, TextTooLong: see ``clean_text``.
        ExplainTooLong: ``explain`` and more than ``EXPLAIN_MAX_WORDS`` words.
        TooManySentences: ``sentences`` and more than ``SENTENCES_MAX`` sentences.
    """
    text = clean_text(text)
    if sentences and len(split_sentences(text)) > SENTENCES_MAX:
        raise TooManySentences(
            f"'sentences' works on texts of up to {SENTENCES_MAX} sentences; "
            f"this one has {len(split_sentences(text))}.",
            field="sentences",
        )
    if explain and len(_words(text)) > EXPLAIN_MAX_WORDS:
        raise ExplainTooLong(
            f"'explain' works on texts of up to {EXPLAIN_MAX_WORDS} words; "
            f"this one has {len(_words(text))}.",
            field="explain",
        )
    return text


def _words(text: str) -> list[Span]:
    return [m.span() for m in _WORD.finditer(text)]


def is_mixed(segments: Sequence[np.ndarray]) -> bool:
    """The mixed rule on segment probabilities (rows in ``LABEL_ORDER``)."""

    def confident(k: int) -> bool:
        return any(
            int(np.argmax(p)) == k and p[k] >= MIXED_CONFIDENCE for p in segments
        )

    return confident(2) and confident(0)


def _nonspace(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


class Scorer:
    """Scores texts with one ONNX model, loaded once.

    Args:
        model_dir: Directory with ``model.onnx``, ``tokenizer.json`` and
            ``model.json``.
        threads: onnxruntime intra-op threads (size processes x threads to the
            cores).
        batch_size: Windows per ONNX call.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        onnx_file: str = "model.onnx",
    ) -> None:
        meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
        self.name: str = meta["name"]
        self.version: str = meta["version"]
        self.model_id = f"{self.name}-{self.version}"
        self.max_tokens: int = int(meta["max_length"])
        self.temperature: float = float(meta.get("temperature", 1.0))
        if [Sentiment(x) for x in meta["labels"]] != list(LABEL_ORDER):
            raise ValueError(f"{model_dir}: unexpected label order {meta['labels']}")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The shipped tokenizer pads every text to 128 tokens; pad per batch instead.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._cls, self._sep, self._pad = (
            self._special_id(token) for token in ("[CLS]", "[SEP]", "[PAD]")
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model_dir / onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.batch_size = batch_size
        self.observe: Callable[[str, int, float], None] | None = None
        """Called after each model call with (model id, rows, seconds):
        the composition root plugs its metrics in here."""

    def _special_id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no {token} token")
        return int(token_id)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Label probabilities of short texts, one window each.

        Used by evaluation, where every text fits the window. Longer texts are
        split like in ``score_batch`` and averaged.

        Args:
            texts: Texts to score.

        Returns:
            Array of shape ``(len(texts), 3)`` in ``LABEL_ORDER``.
        """
        probs, _, _ = self._score_units([[(0, len(t))] for t in texts], list(texts))
        return probs

    def score(
        self, text: str, *, sentences: bool = False, explain: bool = False
    ) -> SentimentResult:
        """Score one text. See ``score_batch``."""
        return self.score_batch([text], sentences=sentences, explain=explain)[0]

    def score_batch(
        self, texts: Sequence[str], *, sentences: bool = False, explain: bool = False
    ) -> list[SentimentResult]:
        """Score texts, all windows of all texts in as few ONNX calls as possible.

        A text of two or more sentences is labelled ``mixed`` when one sentence
        is positive and another negative, each with probability of at least
        ``MIXED_CONFIDENCE`` (``score`` and ``confidence`` stay those of the
        whole text).

        Args:
            texts: Texts to score; each must pass ``clean_text``.
            sentences: Also score and report each sentence.
            explain: Also report each word's contribution to ``score``.

        Returns:
            One result per text, in order.

        Raises:
            TextEmpty: A text is empty or whitespace only.
            TextTooLong: A text exceeds ``MAX_TEXT_CHARS``.
            ExplainTooLong: ``explain`` on a text of more than
                ``EXPLAIN_MAX_WORDS`` words.
            TooManySentences: ``sentences`` on a text of more than
                ``SENTENCES_MAX`` sentences.
        """
        cleaned = [check_text(t, explain=explain, sentences=sentences) for t in texts]
        words = [_words(t) for t in cleaned] if explain else []
        spans = [split_sentences(t) for t in cleaned]
        probs, coverage, window_probs = self._score_units(spans, cleaned)
        # Sentence scores: reported when asked for; for the mixed rule they are
        # needed for texts of 2 to MIXED_MAX_SENTENCES sentences.
        flat = [
            (i, s)
            for i, sp in enumerate(spans)
            if sentences or 1 < len(sp) <= MIXED_MAX_SENTENCES
            for s in sp
        ]
        per_text: dict[int, list[SentenceResult]] = {}
        segments: dict[int, list[np.ndarray]] = {}
        if flat:
            sentence_probs, _, _ = self._score_units(
                [[s] for _, s in flat], [cleaned[i] for i, _ in flat]
            )
            for (i, (start, end)), p in zip(flat, sentence_probs, strict=True):
                label, score, conf = self._summarise(p)
                per_text.setdefault(i, []).append(
                    SentenceResult(
                        start, end, cleaned[i][start:end], label, score, conf
                    )
                )
                segments.setdefault(i, []).append(p)
        explanations = self._explain(cleaned, words, probs) if explain else []
        results: list[SentimentResult] = []
        for i in range(len(cleaned)):
            label, score, conf = self._summarise(probs[i])
            long_text = len(spans[i]) > MIXED_MAX_SENTENCES
            if is_mixed(window_probs[i] if long_text else segments.get(i, [])):
                label = Sentiment.MIXED
            results.append(
                SentimentResult(
                    label=label,
                    score=score,
                    confidence=conf,
                    coverage=round(float(coverage[i]), 4),
                    model=self.model_id,
                    sentences=per_text.get(i, []) if sentences else None,
                    explanation=explanations[i] if explain else None,
                )
            )
        return results

    def _explain(
        self, texts: list[str], words: list[list[Span]], probs: np.ndarray
    ) -> list[list[WordWeight]]:
        """Occlusion: each word's weight is how much ``score`` drops without it.

        All variants of all texts (one word left out each) go through the
        model together, in as few ONNX calls as the batch size allows.
        """
        variants = [
            texts[i][:start] + texts[i][end:]
            for i, ws in enumerate(words)
            for start, end in ws
        ]
        variant_probs, _, _ = self._score_units(
            [split_sentences(v) for v in variants], variants
        )
        out: list[list[WordWeight]] = []
        cursor = 0
        for i, ws in enumerate(words):
            base = float(probs[i][2] - probs[i][0])
            weights = []
            for start, end in ws:
                p = variant_probs[cursor]
                cursor += 1
                weight = round(base - float(p[2] - p[0]), 4)
                weights.append(WordWeight(start, end, texts[i][start:end], weight))
            out.append(weights)
        return out

    @staticmethod
    def _summarise(p: np.ndarray) -> tuple[Sentiment, float, dict[str, float]]:
        label = LABEL_ORDER[int(np.argmax(p))]
        score = round(float(p[2] - p[0]), 4)
        conf = {lab.value: round(float(p[k]), 4) for k, lab in enumerate(LABEL_ORDER)}
        return label, score, conf

    def _score_units(
        self, spans: Sequence[Sequence[Span]], texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, list[list[np.ndarray]]]:
        """Score each text's spans as windows and aggregate per text.

        Returns:
            ``(probs, coverage, window_probs)``: probabilities per text, the
            share of its non-whitespace characters that produced tokens, and
            the probabilities of each of its windows.
        """
        windows: list[_Window] = []
        flat = [texts[i][s:e] for i, sp in enumerate(spans) for s, e in sp]
        encodings = self._tokenizer.encode_batch(flat, add_special_tokens=False)
        cursor = 0
        for owner, sp in enumerate(spans):
            parts = encodings[cursor : cursor + len(sp)]
            sentences = flat[cursor : cursor + len(sp)]
            cursor += len(sp)
            windows.extend(self._pack(owner, parts, sentences))
        logits = self._run([w.ids for w in windows])
        probs = _softmax(logits / self.temperature)
        totals = np.zeros((len(spans), len(LABEL_ORDER)))
        covered = np.zeros(len(spans))
        window_probs: list[list[np.ndarray]] = [[] for _ in spans]
        for w, p in zip(windows, probs, strict=True):
            window_probs[w.owner].append(p)
            if w.chars:
                totals[w.owner] += w.chars * p
                covered[w.owner] += w.chars
        out = np.empty_like(totals)
        for owner in range(len(spans)):
            if covered[owner]:
                out[owner] = totals[owner] / covered[owner]
            else:
                # Nothing tokenizable (e.g. only control characters): the model's
                # answer for an empty window, with coverage 0.
                out[owner] = probs[[w.owner for w in windows].index(owner)]
        whole = np.array(
            [
                sum(_nonspace(texts[i][s:e]) for s, e in sp) or 1
                for i, sp in enumerate(spans)
            ]
        )
        return out, np.minimum(covered / whole, 1.0), window_probs

    def _pack(
        self, owner: int, parts: Sequence[object], sentences: Sequence[str]
    ) -> list[_Window]:
        """Pack consecutive sentences into windows of at most ``max_tokens``.

        A sentence longer than a window is cut at token boundaries into pieces;
        nothing is dropped. WordPiece splits on whitespace and punctuation first,
        so a sentence's tokens are the same alone as inside its text.
        """
        budget = self.max_tokens - 2  # room for [CLS] and [SEP]
        windows: list[_Window] = []
        ids: list[int] = []
        chars = 0
        for enc, sentence in zip(parts, sentences, strict=True):
            tokens: list[int] = enc.ids  # type: ignore[attr-defined]
            offsets: list[tuple[int, int]] = enc.offsets  # type: ignore[attr-defined]
            if ids and len(ids) + len(tokens) > budget:
                windows.append(_Window(owner, ids, chars))
                ids, chars = [], 0
            if len(tokens) <= budget:
                ids = ids + tokens
                chars += _nonspace(sentence) if tokens else 0
                continue
            for k in range(0, len(tokens), budget):
                piece = offsets[k : k + budget]
                windows.append(
                    _Window(
                        owner,
                        tokens[k : k + budget],
                        _nonspace(sentence[piece[0][0] : piece[-1][1]]),
                    )
                )
        if ids or not windows:
            windows.append(_Window(owner, ids, chars))
        return windows

    def _batches(self, sequences: list[list[int]]) -> list[list[int]]:
        """Indices sorted by length, cut into batches of at most ``batch_size``
        rows and ``MAX_BATCH_TOKENS`` padded tokens."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        batches: list[list[int]] = []
        for i in order:
            width = len(sequences[i]) + 2  # the longest so far: order is ascending
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and (len(batches[-1]) + 1) * width <= MAX_BATCH_TOKENS
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _run(self, sequences: list[list[int]]) -> np.ndarray:
        """Run the model on token sequences, sorted by length and padded per batch."""
        logits = np.zeros((len(sequences), len(LABEL_ORDER)), dtype=np.float32)
        for idx in self._batches(sequences):
            width = max(len(sequences[i]) for i in idx) + 2
            input_ids = np.full((len(idx), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                seq = [self._cls, *sequences[i], self._sep]
                input_ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            started = time.perf_counter()
            logits[idx] = self._session.run(["logits"], feed)[0]
            if self.observe is not None:
                self.observe(self.model_id, len(idx), time.perf_counter() - started)
        return logits


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out

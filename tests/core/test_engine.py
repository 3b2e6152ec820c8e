"""The engine scores real text with the committed model."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_MODEL
from core.errors import TextEmpty, TextTooLong
from core.scoring.engine import MAX_TEXT_CHARS, Scorer, clean_text
from core.scoring.labels import Sentiment

EXAMPLES = [
    ("The support team fixed my issue in minutes, thank you!", Sentiment.POSITIVE),
    (
        "I have been waiting three weeks and nobody answers my emails",
        Sentiment.NEGATIVE,
    ),
    ("The meeting moved to 3pm in room 4", Sentiment.NEUTRAL),
    (
        "This is the worst service I have ever had. Cancel my account.",
        Sentiment.NEGATIVE,
    ),
    ("Absolutely love the new dashboard, great work!", Sentiment.POSITIVE),
    ("Our office is closed on Monday for the public holiday.", Sentiment.NEUTRAL),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_labels_real_sentences(scorer: Scorer, text: str, expected: Sentiment) -> None:
    result = scorer.score(text)
    assert result.label is expected
    assert result.coverage == 1.0
    assert result.model == DEFAULT_MODEL


def test_score_and_confidence_are_consistent(scorer: Scorer) -> None:
    result = scorer.score(EXAMPLES[0][0])
    conf = result.confidence
    assert abs(sum(conf.values()) - 1.0) < 1e-3
    assert result.score == pytest.approx(conf["positive"] - conf["negative"], abs=2e-4)
    assert -1.0 <= result.score <= 1.0
    assert max(conf, key=conf.__getitem__) == result.label.value


def test_batch_matches_single_scores_in_order(scorer: Scorer) -> None:
    texts = [t for t, _ in EXAMPLES]
    batch = scorer.score_batch(texts)
    assert [r.label for r in batch] == [e for _, e in EXAMPLES]
    for text, result in zip(texts, batch, strict=True):
        # int8 dynamic quantization picks activation scales per ONNX call, so a
        # text's score moves slightly with its batch-mates (see the model card).
        assert result.score == pytest.approx(scorer.score(text).score, abs=0.06)


def test_long_text_is_windowed_not_truncated(scorer: Scorer) -> None:
    happy = "I love this product and the team behind it. " * 60  # ~600 tokens
    angry = "This is a disaster, I am furious and want a refund. " * 60
    assert scorer.score(happy).label is Sentiment.POSITIVE
    mixed = scorer.score(happy + angry)
    # A model that read only the first 128 (or 512) tokens would see only praise.
    assert mixed.coverage == 1.0
    assert mixed.score < scorer.score(happy).score - 0.5
    assert mixed.confidence["negative"] > 0.3


def test_single_huge_sentence_is_split_at_tokens(scorer: Scorer) -> None:
    text = "terrible " * 400 + "wonderful " * 400  # one "sentence", 800 tokens
    result = scorer.score(text)
    assert result.coverage == 1.0
    assert 0.2 < result.confidence["negative"] < 0.8


def test_sentences_have_code_point_offsets(scorer: Scorer) -> None:
    text = "😀🎉 I love it! The delivery was late and the box was broken.\n\nメモ。"
    result = scorer.score(text, sentences=True)
    assert result.sentences is not None
    spans = [(s.start, s.end, s.text) for s in result.sentences]
    assert spans[0] == (0, 13, "😀🎉 I love it!")
    for start, end, sentence in spans:
        assert text[start:end] == sentence
    assert result.sentences[0].label is Sentiment.POSITIVE
    assert result.sentences[1].label is Sentiment.NEGATIVE
    assert len(spans) == 3


def test_any_unicode_is_accepted(scorer: Scorer) -> None:
    for text in [
        "日本語のテキスト",
        "مرحبا بالعالم",
        "🙂🙂🙂",
        "tab\tand\x07bell",
        "\ud800 lone",
    ]:
        result = scorer.score(text)
        assert result.label in set(Sentiment)


def test_text_with_no_tokens_has_zero_coverage(scorer: Scorer) -> None:
    assert scorer.score("\x00\x01\x02").coverage == 0.0


def test_input_rules() -> None:
    with pytest.raises(TextEmpty):
        clean_text("")
    with pytest.raises(TextEmpty):
        clean_text(" \n\t\u3000 ")
    with pytest.raises(TextTooLong):
        clean_text("a" * (MAX_TEXT_CHARS + 1))
    assert clean_text("a" * MAX_TEXT_CHARS) == "a" * MAX_TEXT_CHARS
    assert clean_text("x\ud800y") == "x\ufffdy"


def test_predict_proba_shape(scorer: Scorer) -> None:
    probs = scorer.predict_proba(["good", "bad", "ok then"])
    assert probs.shape == (3, 3)
    assert abs(probs.sum(axis=1) - 1).max() < 1e-5


def test_mixed_rule() -> None:
    import numpy as np

    from core.scoring.engine import MIXED_CONFIDENCE, is_mixed

    strong, weak = MIXED_CONFIDENCE + 0.01, MIXED_CONFIDENCE - 0.01

    def pos(p: float) -> np.ndarray:
        return np.array([0.0, 1 - p, p])

    def neg(p: float) -> np.ndarray:
        return np.array([p, 1 - p, 0.0])

    assert is_mixed([pos(strong), neg(strong)])
    assert is_mixed([neg(strong), pos(0.5), pos(0.9)])
    assert not is_mixed([pos(strong), neg(weak)])
    assert not is_mixed([pos(strong), pos(strong)])
    assert not is_mixed([neg(strong)])
    assert not is_mixed([])


def test_long_texts_are_mixed_by_windows(scorer: Scorer) -> None:
    happy = "I love this product and the team behind it. " * 40
    angry = "This is a disaster, I am furious and want a refund. " * 40
    assert scorer.score(happy + angry).label is Sentiment.MIXED
    assert scorer.score(happy + happy).label is Sentiment.POSITIVE


def test_sentence_limit(scorer: Scorer) -> None:
    from core.errors import TooManySentences
    from core.scoring.engine import SENTENCES_MAX

    text = "Ok. " * (SENTENCES_MAX + 1)
    with pytest.raises(TooManySentences):
        scorer.score(text, sentences=True)
    assert scorer.score(text).label in set(Sentiment)  # fine without the option
    assert len(scorer.score("Ok. " * SENTENCES_MAX, sentences=True).sentences) == 1000


def test_mixed_and_explain_in_engine(scorer: Scorer) -> None:
    mixed = scorer.score(
        "I love the new design. But the app crashes every hour and I hate it."
    )
    assert mixed.label is Sentiment.MIXED
    assert mixed.sentences is None  # computed for the rule, reported only if asked
    result = scorer.score("Terrible delay, wonderful staff", explain=True)
    weights = {w.text: w.weight for w in result.explanation}
    assert weights["wonderful"] > 0 > weights["Terrible"]


def test_batches_bound_rows_and_padded_tokens(scorer: Scorer) -> None:
    from core.scoring.engine import MAX_BATCH_TOKENS

    lengths = [126] * 20 + [10] * 70 + [60] * 5
    sequences = [[1] * n for n in lengths]
    batches = scorer._batches(sequences)
    assert sorted(i for b in batches for i in b) == list(range(len(sequences)))
    for batch in batches:
        width = max(lengths[i] for i in batch) + 2
        assert len(batch) <= scorer.batch_size
        assert len(batch) * width <= MAX_BATCH_TOKENS
    # Full windows go 8 to a call; short texts fill a call of 32.
    assert sorted(len(b) for b in batches if lengths[b[0]] == 126) == [4, 8, 8]
    assert max(len(b) for b in batches) == 32

from core.scoring.segment import split_sentences


def _texts(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_splits_on_terminal_punctuation() -> None:
    assert _texts("Hello there. How are you? Great!") == [
        "Hello there.",
        "How are you?",
        "Great!",
    ]


def test_keeps_decimals_and_abbreviated_urls_together() -> None:
    assert _texts("It costs 3.50 at example.com today.") == [
        "It costs 3.50 at example.com today."
    ]


def test_blank_lines_and_cjk_stops() -> None:
    assert _texts("first line\n\nsecond line") == ["first line", "second line"]
    assert _texts("良い。悪い！") == ["良い。", "悪い！"]


def test_no_character_is_lost() -> None:
    text = '  A. B?  C!!  "Quoted." D…  E  '
    joined = "".join(_texts(text))
    assert joined.replace(" ", "") == text.replace(" ", "")


def test_whitespace_only_gives_nothing() -> None:
    assert split_sentences(" \n\t ") == []

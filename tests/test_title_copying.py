"""The copy measures (core/title_copying.py) on hand-made titles, and the badge that uses them."""
from __future__ import annotations

import pytest

from core.title_checks import title_badge
from core.title_copying import copy_tokens, copying, fragments

REVIEW = "Der Staubsauger ist nach einem Monat kaputt gegangen, der Kundendienst meldet sich nicht."


def test_a_whole_copy_is_one_fragment_and_counts_as_copied():
    c = copying("Nach einem Monat kaputt gegangen", REVIEW)
    assert (c.coverage, c.density, c.novel) == (1.0, 5.0, 0.0)
    assert c.copied


def test_a_copied_phrase_with_one_word_changed_still_counts_as_copied():
    c = copying("Nach einem Monat kaputt gewesen", REVIEW)  # "gegangen" -> "gewesen"
    assert c.coverage == pytest.approx(0.8) and c.novel == pytest.approx(0.2)
    assert c.density == pytest.approx(16 / 5)  # one fragment of four
    assert c.copied


def test_review_words_picked_apart_cover_the_title_at_density_one():
    c = copying("Kundendienst kaputt", REVIEW)
    assert (c.coverage, c.density) == (1.0, 1.0)


def test_a_title_in_its_own_words_is_novel_and_not_copied():
    c = copying("Finger weg von diesem Gerät", REVIEW)
    assert (c.coverage, c.novel) == (0.0, 1.0)
    assert not c.copied
    half = copying("Monat war ärgerlich", REVIEW)  # one token of three from the review
    assert half.coverage == pytest.approx(1 / 3) and not half.copied


def test_chinese_is_measured_on_characters():
    review = "房间很小，空调噪音很大，晚上根本睡不好。"
    assert copy_tokens("房间很小") == ["房", "间", "很", "小"]
    copied = copying("房间很小", review)
    assert (copied.coverage, copied.density) == (1.0, 4.0) and copied.copied
    written = copying("差评酒店", review)  # none of these characters is in the review
    assert written.novel == 1.0 and not written.copied
    mixed = copying("耳机音质不错", "音质很好，戴着也舒服。")  # shares 音质 only
    assert mixed.coverage == pytest.approx(2 / 6) and not mixed.copied


def test_japanese_kana_and_kanji_are_characters_and_latin_words_stay_words():
    assert copy_tokens("コーヒーメーカーは最悪") == list("コーヒーメーカーは最悪")
    assert copy_tokens("USBケーブル付き") == ["usb", "ケ", "ー", "ブ", "ル", "付", "き"]


def test_fragments_take_the_longest_shared_run_first():
    assert fragments(list("abcx"), list("abyabcz")) == [3]
    assert fragments([], list("abc")) == [] and fragments(list("abc"), []) == []


def test_an_empty_title_copies_nothing():
    c = copying("", REVIEW)
    assert (c.tokens, c.coverage, c.copied) == (0, 0.0, False)


def test_the_badge_calls_a_copied_phrase_with_one_word_changed_copied():
    badge, share = title_badge("Nach einem Monat kaputt gewesen", "de", "de", REVIEW, seen=False)
    assert badge == "copied" and share == pytest.approx(0.8)
    assert title_badge("房间很小", "zh-cn", "zh-cn", "房间很小，空调噪音很大。", seen=False)[0] == "copied"
    assert title_badge("Finger weg", "de", "de", REVIEW, seen=False)[0] == "same_language"

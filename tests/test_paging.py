"""Page layout: nothing overflows, labels are never split, body text flows across pages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menus.paging import Item, paginate, screen_len, split_at_word, truncate


@pytest.mark.parametrize(
    "text, width, head, tail",
    [
        pytest.param("un deux trois", 8, "un deux", "trois", id="at-space"),
        pytest.param("un deux", 20, "un deux", "", id="fits"),
        pytest.param("anticonstitutionnel", 5, "antic", "onstitutionnel", id="hard-cut"),
        pytest.param("un deux", 7, "un deux", "", id="exact"),
    ],
)
def test_split_at_word(text, width, head, tail):
    assert split_at_word(text, width) == (head, tail)


@pytest.mark.parametrize(
    "text, width, expected",
    [("abcdef", 10, "abcdef"), ("abcdefghij", 6, "abc..."), ("abcdef", 2, "ab")],
)
def test_truncate(text, width, expected):
    assert truncate(text, width) == expected


def test_everything_on_one_page_gets_the_closing_footer():
    pages = paginate(["T"], [Item("1. a"), Item("2. b")], "0.Back", "98.More 0.Back", 160)
    assert pages == [["T", "1. a", "2. b", "0.Back"]]


def test_options_move_whole_to_the_next_page():
    items = [Item(f"{n}. " + "x" * 30) for n in range(1, 9)]
    pages = paginate(["Title"], items, "0.Back", "98.More 0.Back", 160)
    assert len(pages) > 1
    assert [line for page in pages for line in page if line[0].isdigit() and "x" in line] == [i.text for i in items]
    assert all(page[-1] == "98.More 0.Back" for page in pages[:-1])
    assert pages[-1][-1] == "0.Back"


@given(
    header=st.text(alphabet="abc ", max_size=40),
    items=st.lists(
        st.tuples(st.text(alphabet="abcdef ", min_size=1, max_size=300), st.booleans()), max_size=30
    ),
    budget=st.integers(min_value=80, max_value=182),
)
def test_pages_never_overflow_and_keep_every_word(header, items, budget):
    items = [Item(text.strip() or "x", splittable) for text, splittable in items]
    pages = paginate([header], items, "0.Retour 00.Menu", "98.Suite 0.Retour 00.Menu", budget)
    assert all(screen_len(page) <= budget for page in pages)
    shown = " ".join(" ".join(page[1:-1]) for page in pages).split()
    expected = " ".join(i.text for i in items).split()
    # Only a label longer than a whole page may be shortened.
    if all(len(i.text) < budget // 2 or i.splittable for i in items):
        assert shown == expected

"""The USSD channel's rendering: a Layout becomes pages of folded ASCII text within the budget.

This is the one place USSD text is made: titles and numbered options laid out, navigation lines
added, prose continued on the next page (menus.paging), a notice shown in place of the title.
"""

from __future__ import annotations

from typing import NamedTuple

from menus.paging import Item, paginate_shown, screen_len, truncate
from menus.screen import Layout, Page, Part, phrase
from menus.wording import Wording
from messages import to_ussd

# An error or notice line replaces the title for one screen; pages are laid out with this much
# room for the title so that page breaks never depend on whether an error is showing.
FLASH_WIDTH = 32
MAX_OPTIONS = 97  # 98 is "more"

_NAV_BACK, _NAV_HOME, _NAV_MORE = phrase("nav.back"), phrase("nav.home"), phrase("nav.more")


class Pages(NamedTuple):
    """A layout laid out once: each page's lines and which items each shows. Items are the body's
    paragraphs (`paragraphs`: the body part of each), then the layout's lines, then its options."""

    layout: Layout
    lines: list[list[str]]
    shown: list[range]
    paragraphs: list[int]


class UssdRenderer:
    def __init__(self, wording: Wording, max_chars: int) -> None:
        self.wording = wording
        self.max_chars = max_chars

    def nav_lines(self, layout: Layout, lang: str) -> tuple[str, str]:
        word = self.wording.text
        parts = [word(_NAV_BACK, lang), word(_NAV_HOME, lang)] if layout.nav else []
        more = to_ussd(" ".join([word(_NAV_MORE, lang), *parts]))
        return to_ussd(" ".join(parts)), more

    def items(self, layout: Layout, lang: str) -> tuple[list[Item], list[int]]:
        """The lines to page, and the body part each paragraph comes from."""
        word = self.wording.text
        items: list[Item] = []
        paragraphs: list[int] = []
        for index, part in enumerate(layout.body):
            for paragraph in word(part, lang).split("\n"):
                if paragraph:
                    items.append(Item(to_ussd(paragraph), True))
                    paragraphs.append(index)
        # One fact a line: a line break a staff text may end with has no line to start.
        items += [Item(to_ussd(word(part, lang).strip())) for part in layout.lines]
        items += [Item(to_ussd(f"{n}. {word(label, lang)}")) for n, label in enumerate(layout.options[:MAX_OPTIONS], start=1)]
        return items, paragraphs

    def pages(self, layout: Layout, lang: str) -> Pages:
        budget = self.max_chars
        # At most two title lines, each at most half a screen, so that content always fits.
        title = [truncate(line, budget // 2) for line in to_ussd(self.wording.text(layout.title, lang)).split("\n")[:2]]
        if screen_len(title) > budget // 2:
            title = [truncate(" ".join(title), budget // 2)]
        nav_last, nav_more = self.nav_lines(layout, lang)
        header = [title[0].ljust(FLASH_WIDTH), *title[1:]]
        items, paragraphs = self.items(layout, lang)
        pages, shown = paginate_shown(header, items, nav_last, nav_more, budget)
        for page in pages:
            page[0] = title[0]
        return Pages(layout, pages, shown, paragraphs)

    @staticmethod
    def structure(pages: Pages, number: int, notice: Part | None) -> Page:
        """Which parts of the layout page `number` shows: items are the body's paragraphs, then
        the lines, then the options, so each kind is one run of indexes."""
        on, paragraphs, layout = pages.shown[number], pages.paragraphs, pages.layout
        first_line = len(paragraphs)
        first_option = first_line + len(layout.lines)
        last_paragraph = min(on.stop, first_line) - 1
        body = range(paragraphs[on.start], paragraphs[last_paragraph] + 1) if on.start <= last_paragraph else range(0)
        lines = range(max(on.start, first_line) - first_line, max(min(on.stop, first_option), first_line) - first_line)
        options = range(max(on.start, first_option) - first_option, max(on.stop, first_option) - first_option)
        return Page(layout, body, lines, options, number, len(pages.lines), notice)

    def page(self, pages: Pages, number: int, notice: Part | None, lang: str) -> tuple[str, Page]:
        """The text of page `number` (the last if there are fewer), with `notice` in place of the title."""
        number = min(number, len(pages.lines) - 1)
        lines = pages.lines[number]
        if notice is not None:
            flash = truncate(to_ussd(self.wording.text(notice, lang)).replace("\n", " "), FLASH_WIDTH)
            lines = [flash, *lines[1:]]
        return "\n".join(lines), self.structure(pages, number, notice)

    def end(self, part: Part, lang: str) -> tuple[str, Page]:
        """A closing screen: its text alone, cut to one screen."""
        layout = Layout(None, body=(part,), nav=False)
        return truncate(to_ussd(self.wording.text(part, lang)), self.max_chars), Page(layout, body_shown=range(1), end=True)

"""Fitting a screen's content into pages of at most `budget` characters.

Input strings are already ASCII-folded (see messages.ussd), so `len` is the exact cost a handset
will show. Lines are joined with "\n", which costs one character each.
"""

from __future__ import annotations

from dataclasses import dataclass

ELLIPSIS = "..."


@dataclass(frozen=True, slots=True)  # slots: a hop makes one per line it shows
class Item:
    text: str
    # Body text may continue on the next page at a word boundary; an option label never does.
    splittable: bool = False


def screen_len(lines: list[str]) -> int:
    return sum(len(line) for line in lines) + max(len(lines) - 1, 0)


def truncate(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[:width]
    return text[: width - len(ELLIPSIS)].rstrip() + ELLIPSIS


def split_at_word(text: str, width: int) -> tuple[str, str]:
    """Longest head of `text` within `width` ending at a space; hard cut if one word is too long."""
    if len(text) <= width:
        return text, ""
    cut = text.rfind(" ", 0, width + 1)
    if cut <= 0:
        return text[:width], text[width:].lstrip()
    return text[:cut].rstrip(), text[cut:].lstrip()


# Below this many free characters a body chunk waits for the next page instead of leaving
# a dangling word or two at the bottom of a screen.
MIN_CHUNK = 12


def paginate(
    header: list[str],
    items: list[Item],
    nav_last: str,
    nav_more: str,
    budget: int,
) -> list[list[str]]:
    """Pages of lines. `nav_last` closes the last page, `nav_more` every other one.

    The header (a title) is repeated on every page. Guarantees: every page is within
    `budget`; no option label is split across pages; every item appears, in order.
    """
    return paginate_shown(header, items, nav_last, nav_more, budget)[0]


def paginate_shown(
    header: list[str],
    items: list[Item],
    nav_last: str,
    nav_more: str,
    budget: int,
) -> tuple[list[list[str]], list[range]]:
    """paginate(), with the indexes of the items each page shows (wholly or in part), so that
    a screen's structure can say what is on the page shown."""
    pending = list(items)
    pages: list[list[str]] = []
    shown: list[range] = []
    done = 0  # items wholly shown on earlier pages or on this one so far
    while True:
        base = list(header)
        start = done
        # Does everything left fit on this page with the closing footer?
        last = base + [i.text for i in pending] + ([nav_last] if nav_last else [])
        if screen_len(last) <= budget:
            pages.append(last)
            shown.append(range(start, len(items)))
            return pages, shown
        footer = [nav_more] if nav_more else []
        partial = 0  # 1: the page ends with the head of an item whose tail goes on the next
        room = budget - screen_len(base + footer) - 1  # -1: newline before the next line
        body: list[str] = []
        while pending:
            item = pending[0]
            used = screen_len(body) + (1 if body else 0)
            free = room - used
            if len(item.text) <= free:
                body.append(item.text)
                pending.pop(0)
                done += 1
                continue
            # Split prose at a space; cut inside a word only when it alone exceeds a page.
            breakable = item.text.rfind(" ", 0, free + 1) > 0
            if item.splittable and (not body or (free >= MIN_CHUNK and breakable)):
                head, tail = split_at_word(item.text, max(free, 1))
                body.append(head)
                if tail:
                    pending[0] = Item(tail, True)
                    partial = 1
                else:
                    pending.pop(0)
                    done += 1
            elif not body:
                # A single label longer than a whole page: shorten it rather than loop forever.
                body.append(truncate(item.text, max(free, 1)))
                pending.pop(0)
                done += 1
            break
        pages.append(base + body + footer)
        shown.append(range(start, done + partial))
        if not pending:
            # Only reachable when the final item exactly filled the page: close it properly.
            pages[-1] = base + body + ([nav_last] if nav_last else [])
            if screen_len(pages[-1]) > budget:
                pages[-1] = base + body + footer
            return pages, shown

"""Every console page, in French, at a phone's width (360×740) and a laptop's (1280×800), in
headless Chromium (issue 15): no sideways scrolling, no English left, no raw code where a word
belongs, and light enough for a weak connection: under 100 kB and 10 requests on a cold load.

The page weights are written to test-artifacts/page-weight.md (the README's table); the
screenshots to test-artifacts/screenshots/walkthrough/."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlmodel import select

from gateway.data import auth
from gateway.data import models
from gateway.app import create_app
from tests.conftest import NOW
from tests.e2e.browser import PASSWORD, SCREENSHOTS, fits_the_width, serve

pytestmark = [pytest.mark.db, pytest.mark.browser]

PHONE_SMALL = {"width": 360, "height": 740}
LAPTOP = {"width": 1280, "height": 800}
ADMIN = "awa.traore@sugu.test"  # no role word in the address: the header shows it
MAX_BYTES = 100_000
MAX_REQUESTS = 10
WEIGHTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page-weight.md"

# Words that only English would put on a page (a French page may quote farmers' Bambara and
# French texts, codes in <code>, numbers; none of these).
ENGLISH = re.compile(
    r"\b(the|and|with|your|this|these|from|which|will|have|has|are|is|of|to|for|yes|save|send|sent|"
    r"price|prices|crop|crops|market|markets|status|producer|producers|buyer|buyers|offers?|"
    r"recipients?|none|edit|delete|new|until|search|back|next|today|week|weeks|month|months)\b",
    re.I,
)
# Codes that must show as words (units, kinds, categories, statuses).
RAW_CODES = re.compile(
    r"\b(sack50|sack100|basket|crate|wholesale|retail|postharvest|awaiting_approval|opted_out|"
    r"microfinance_|enumerator|reporter|editor|admin)\b"
)
# What is not console text: farmers' texts and codes shown as such, the phone screens.
NOT_CONSOLE_TEXT = "code, kbd, pre, script, style, textarea, select, .screen, .ussd, .farmer-text, [lang]:not(html)"


@pytest.fixture
def french_console(settings, db):
    with db.unit_of_work() as session:
        auth.create_staff(session, email=ADMIN, password=PASSWORD, role="admin")
        crop = session.exec(select(models.Crop)).first()
        market = session.exec(select(models.Market)).first()
        session.add(models.Producer(phone="+22370000123", name="Fatoumata", language="bm", region="Sikasso",
                                    village="Kignan", role="enumerator"))
        session.add(models.Broadcast(kind="custom", status="done", title="Essai", text_fr="Bonjour", text_bm="I ni ce",
                                     audience={}, created_by=ADMIN))
        # A withdrawn price: the correction-SMS page is shown for those only.
        withdrawn = session.exec(select(models.PriceObservation).order_by(models.PriceObservation.id.desc())).first()
        withdrawn.status = "withdrawn"
        session.add(withdrawn)
    with serve(create_app(settings.model_copy(update={"console_language": "fr"}), clock=lambda: NOW)) as url:
        yield url, crop, market


def _pages(db, crop, market) -> list[tuple[str, str]]:
    with db.unit_of_work() as session:
        first = lambda model: session.exec(select(model.id).order_by(model.id)).first()  # noqa: E731
        obs, demand, producer = first(models.PriceObservation), first(models.Demand), first(models.Producer)
        tip, service, broadcast = first(models.Tip), first(models.Service), first(models.Broadcast)
        withdrawn = session.exec(select(models.PriceObservation.id).where(models.PriceObservation.status == "withdrawn")).first()
    pages = [
        ("dashboard", "/admin/"), ("prices", "/admin/prices"), ("price-history", f"/admin/prices/history?crop={crop.id}&market={market.id}"),
        ("price-import", "/admin/prices/import"), ("price-change", f"/admin/prices/{obs}/change"),
        ("trends", "/admin/trends"), ("trend", f"/admin/trends/detail?crop={crop.id}&market={market.id}"),
        ("demands", "/admin/demands"), ("demand", f"/admin/demands/{demand}"), ("buyers", "/admin/buyers"),
        ("services", "/admin/services"), ("service", f"/admin/services/{service}"),
        ("reference", "/admin/reference"), ("reference-markets", "/admin/reference/markets"),
        ("reference-crops", "/admin/reference/crops"), ("reference-units", "/admin/reference/units"),
        ("tips", "/admin/tips"), ("tip", f"/admin/tips/{tip}"), ("messages", "/admin/messages"),
        ("message", "/admin/messages/lang.choose"), ("producers", "/admin/producers"),
        ("producer", f"/admin/producers/{producer}"), ("broadcasts", "/admin/broadcasts"),
        ("broadcast", f"/admin/broadcasts/{broadcast}"), ("simulators", "/admin/simulators"),
        ("studio", "/admin/studio"), ("studio-clips", "/admin/studio/clips?lang=bm"),
        ("studio-clip", "/admin/studio/clips/fr.num.71"),
        ("staff", "/admin/staff"), ("audit", "/admin/audit"), ("account", "/admin/account"),
        ("tip-new", "/admin/tips/0"), ("service-new", "/admin/services/0"),
        ("reference-kinds", "/admin/reference/kinds"), ("reference-regions", "/admin/reference/regions"),
        ("reference-crop", f"/admin/reference/crops/{crop.id}"), ("correction-sms", f"/admin/prices/{withdrawn}/correction-sms"),
        ("languages", "/admin/languages"), ("language", "/admin/languages/bm"), ("bulletins", "/admin/bulletins"),
    ]
    return pages


# Pages shown in answer to a form: the confirmations (count and cost) and a form sent back with
# its errors. (name, the page the form is on, the form's action, what is typed, expected status)
def _answers(db, crop, market) -> list[tuple[str, str, str, dict, int]]:
    with db.unit_of_work() as session:
        demand = session.exec(select(models.Demand.id).where(models.Demand.status == "open").order_by(models.Demand.id)).first()
    return [
        ("confirm-broadcast", "/admin/broadcasts", "/admin/broadcasts", {"text_fr": "Réunion des producteurs jeudi."}, 200),
        ("confirm-publish", f"/admin/prices?market={market.id}", "/admin/prices",
         {"market": str(market.id), "date": NOW.date().isoformat(), f"price_{crop.id}": "12345"}, 200),
        ("confirm-close-demand", "/admin/demands", f"/admin/demands/{demand}/close", {}, 200),
        ("confirm-buyer-sms", "/admin/demands", f"/admin/demands/{demand}/notify", {}, 200),
        ("confirm-retire-crop", "/admin/reference/crops", f"/admin/reference/crops/{crop.id}/retire", {}, 200),
        ("failed-new-demand", "/admin/demands", "/admin/demands", {"buyer_id": "1", "crop_id": str(crop.id), "quantity_kg": "abc"}, 400),
    ]


def _submit(page, start: str, action: str, fields: dict):
    """Posts a form from `start` as its page would (with its CSRF token) and returns the answer."""
    page.goto(start)
    with page.expect_navigation() as answered:
        page.evaluate(
            """([action, fields]) => { const form = document.createElement('form');
                 form.method = 'post'; form.action = action;
                 const token = document.querySelector('input[name=csrf_token]').value;
                 for (const [name, value] of Object.entries({...fields, csrf_token: token})) {
                   const input = document.createElement('input'); input.type = 'hidden';
                   input.name = name; input.value = value; form.appendChild(input); }
                 document.body.appendChild(form); form.submit(); }""",
            [action, fields],
        )
    return answered.value


def _console_text(page) -> str:
    # Text node by text node, joined by spaces: textContent runs neighbouring cells together
    # ("sack50" + "sac 50kg" = "sack50sac 50kg"), and a word then escapes the checks.
    return page.evaluate(
        """(skip) => { const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
             const texts = [];
             for (let node = walker.nextNode(); node; node = walker.nextNode()) {
               if (!node.parentElement.closest(skip)) texts.push(node.data); }
             const keep = e => !e.closest(skip);
             const shown = [...document.body.querySelectorAll('[placeholder],[title],[aria-label]')].filter(keep)
               .map(e => [e.getAttribute('placeholder'), e.getAttribute('title'), e.getAttribute('aria-label')].join(' '));
             const buttons = [...document.body.querySelectorAll('input[type=submit],input[type=button]')].filter(keep).map(e => e.value);
             return texts.join(' ') + ' ' + shown.join(' ') + ' ' + buttons.join(' '); }""",
        NOT_CONSOLE_TEXT,
    )


def page_findings(page) -> list[str]:
    """What is wrong with the page shown, for a French-speaking staff member on its device."""
    found = []
    if page.get_attribute("html", "lang") != "fr":
        found.append("<html lang> is not fr")
    if not fits_the_width(page):
        found.append(f"scrolls sideways ({page.evaluate('document.documentElement.scrollWidth')} px wide)")
    text = _console_text(page)
    english = sorted({m.group(0) for m in ENGLISH.finditer(text)})
    if english:
        found.append(f"English words {english[:8]}")
    codes = sorted({m.group(0) for m in RAW_CODES.finditer(text)})
    if codes:
        found.append(f"raw codes {codes[:8]}")
    return found


def _signed_in_context(chromium, base_url, viewport, check=None):
    # A French-speaking staff member's browser (Accept-Language, navigator.language). The date
    # pickers' dd/mm/yyyy or mm/dd/yyyy is the browser's own interface language, which this
    # context cannot set: headless Chromium here draws mm/dd/yyyy.
    context = chromium.new_context(base_url=base_url, viewport=viewport, is_mobile=viewport["width"] < 600,
                                   has_touch=viewport["width"] < 600, locale="fr-FR")
    context.set_default_timeout(15_000)
    page = context.new_page()
    response = page.goto("/admin/login")
    if check:
        check(page, "sign-in", viewport, response.status)
    page.locator("#email").fill(ADMIN)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/?$"))
    return context, page


def test_every_console_page_in_french_at_phone_and_laptop_width(chromium, french_console, db, problems):
    url, crop, market = french_console
    folder = SCREENSHOTS / "walkthrough"
    folder.mkdir(parents=True, exist_ok=True)
    findings: list[str] = []
    weights: list[tuple[str, int, int]] = []
    pages = _pages(db, crop, market)
    answers = _answers(db, crop, market)

    def check(page, name: str, viewport: dict, status: int, expected: int = 200) -> None:
        where = f"{name} at {viewport['width']} px"
        if status != expected:
            findings.append(f"{where}: HTTP {status}")
        findings.extend(f"{where}: {finding}" for finding in page_findings(page))
        page.screenshot(path=str(folder / f"{name}-{viewport['width']}.png"), full_page=True)

    for viewport in (PHONE_SMALL, LAPTOP):
        context, page = _signed_in_context(chromium, url, viewport, check)
        problems.watch(page)
        state = context.storage_state()
        if viewport is PHONE_SMALL:
            weights.append(("/admin/login", *_cold_load(chromium, url, "/admin/login", None)))
        for name, path in pages:
            check(page, name, viewport, page.goto(path).status)
            if viewport is PHONE_SMALL:
                weights.append((path, *_cold_load(chromium, url, path, state)))
        for name, start, action, fields, expected in answers:
            check(page, name, viewport, _submit(page, start, action, fields).status, expected)
        context.close()
    for path, size, requests in weights:
        if size >= MAX_BYTES or requests >= MAX_REQUESTS:
            findings.append(f"{path}: {size} bytes in {requests} requests on a cold load")
    _write_weights(weights)
    assert not findings, "\n".join(findings)


def _cold_load(chromium, url: str, path: str, state) -> tuple[int, int]:
    """Bytes (headers and bodies as transferred) and requests of one page in a fresh context:
    nothing cached, as a staff member's phone on its first visit."""
    context = chromium.new_context(base_url=url, viewport=PHONE_SMALL, storage_state=state)
    page = context.new_page()
    seen = []
    page.on("requestfinished", lambda request: seen.append(request))
    page.goto(path, wait_until="load")
    total = 0
    for request in seen:
        sizes = request.sizes()
        total += sizes["requestHeadersSize"] + sizes["responseHeadersSize"] + sizes["responseBodySize"]
    context.close()
    return total, len(seen)


def _write_weights(weights: list[tuple[str, int, int]]) -> None:
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| Page | kB | Requests |", "|---|---:|---:|"]
    lines += [f"| `{path}` | {size / 1000:.1f} | {requests} |" for path, size, requests in weights]
    heaviest = max(weights, key=lambda w: w[1])
    lines.append(f"\nHeaviest: `{heaviest[0]}` at {heaviest[1] / 1000:.1f} kB; "
                 f"measured {dt.date.today().isoformat()} at 360×740, cold load.")
    WEIGHTS.write_text("\n".join(lines) + "\n")


def test_issue15_navigation_folds_behind_a_menu_on_a_phone(chromium, french_console, problems):
    """Finding: at 390 px the navigation took four lines on every page. On a phone it folds behind
    one Menu button (the header keeps the brand, the button and who is signed in); on a laptop it
    shows at once and the button is hidden."""
    url, _crop, _market = french_console
    for viewport, folded in ((PHONE_SMALL, True), (LAPTOP, False)):
        context, page = _signed_in_context(chromium, url, viewport)
        problems.watch(page)
        page.goto("/admin/prices")
        menu, nav = page.locator("header .menu-button"), page.locator("header nav")
        prices = nav.get_by_role("link", name="Prix", exact=True)
        assert menu.is_visible() == folded and prices.is_visible() == (not folded), viewport
        header = page.locator("header.top").bounding_box()["height"]
        assert header <= (110 if folded else 80), f"header {header} px high at {viewport['width']} px"
        if folded:
            menu.click()
            assert prices.is_visible()
            prices.click()
            page.wait_for_url("**/admin/prices")
        context.close()

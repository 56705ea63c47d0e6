"""The staff JSON API: tokens and roles, validation that changes nothing, and what each call does."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from gateway.data import auth
from gateway.data import models
from tests.configured_languages import FULFULDE, SONGHOY, add_languages

pytestmark = pytest.mark.db


@pytest.fixture
def tokens(db):
    out = {}
    with db.unit_of_work() as session:
        for role in auth.ROLES:
            user = auth.create_staff(session, email=f"{role}@api.test", password="x" * 12, role=role)
            out[role] = auth.issue_api_token(session, user)
    return out


def call(client, method, path, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, headers=headers, **kw)


ROUTES = [
    ("GET", "/api/v1/crops", None, {"admin", "editor", "reporter"}),
    ("GET", "/api/v1/prices?crop=tomato&market=sikasso&limit=3", None, {"admin", "editor", "reporter"}),
    ("POST", "/api/v1/prices", {"prices": [{"date": "2026-11-28", "market": "mopti", "crop": "onion", "price": 999}], "alerts": False}, {"admin", "editor", "reporter"}),
    ("GET", "/api/v1/demands", None, {"admin", "editor"}),
    ("GET", "/api/v1/tips", None, {"admin", "editor"}),
    ("GET", "/api/v1/producers", None, {"admin", "editor"}),
    ("POST", "/api/v1/producers", {"phone": "+22370000050"}, {"admin", "editor"}),
]


@pytest.mark.parametrize("method, path, body, allowed", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_tokens_and_roles(client, tokens, method, path, body, allowed):
    assert call(client, method, path, json=body).status_code == 401
    assert call(client, method, path, "sugu_wrong", json=body).status_code == 401
    for role, token in tokens.items():
        response = call(client, method, path, token, json=body)
        assert (response.status_code < 300) == (role in allowed), (role, response.status_code, response.text)


def test_publishing_prices_queues_alerts_and_is_idempotent(client, tokens, db):
    body = {"prices": [
        {"date": "2026-11-28", "market": "sikasso", "crop": "tomato", "price": 15500},
        {"date": "2026-11-21", "market": "sikasso", "crop": "tomato", "price": 14900, "unit": "basket"},
        {"date": "2026-11-28", "market": "mopti", "crop": "potato", "price": 480, "kind": "retail"},
    ]}
    first = call(client, "POST", "/api/v1/prices", tokens["reporter"], json=body)
    assert first.status_code == 201
    out = first.json()
    assert len(out["created"]) == 3 and out["already_present"] == 0 and out["alert_broadcast"]
    with db.unit_of_work() as session:
        alert = session.get(models.Broadcast, out["alert_broadcast"])
    assert len(alert.audience["pairs"]) == 2  # tomato at Sikasso (newest date only) and potato at Mopti
    again = call(client, "POST", "/api/v1/prices", tokens["reporter"], json=body).json()
    assert again["created"] == [] and again["already_present"] == 3 and again["alert_broadcast"] is None
    listed = call(client, "GET", "/api/v1/prices?crop=tomato&market=sikasso&limit=1", tokens["reporter"]).json()
    assert listed[0]["price"] == 15500 and listed[0]["source"] == "api:reporter@api.test"


@pytest.mark.parametrize(
    "price, detail",
    [
        pytest.param({"date": "2026-11-28", "market": "sikasso", "crop": "mango", "price": 100}, "unknown crop code", id="unknown-crop"),
        pytest.param({"date": "2026-11-28", "market": "kayes", "crop": "tomato", "price": 100}, "unknown market code", id="unknown-market"),
        pytest.param({"date": "2099-01-01", "market": "sikasso", "crop": "tomato", "price": 100}, "in the future", id="future"),
        pytest.param({"date": "2026-11-28", "market": "sikasso", "crop": "tomato", "price": 0}, "greater than 0", id="zero-price"),
        pytest.param({"date": "2026-11-28", "market": "sikasso", "crop": "tomato", "price": 100, "unit": "ton"}, "unit", id="bad-unit"),
    ],
)
def test_one_bad_price_publishes_nothing(client, tokens, db, price, detail):
    good = {"date": "2026-11-28", "market": "mopti", "crop": "onion", "price": 777}
    response = call(client, "POST", "/api/v1/prices", tokens["editor"], json={"prices": [good, price]})
    assert response.status_code == 422 and detail in response.text
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.PriceObservation).where(models.PriceObservation.price == 777)).one() == 0


@pytest.mark.parametrize(
    "method, path, body",
    [
        pytest.param("POST", "/api/v1/demands", {"buyer": "la\u0000wal", "crop": "onion", "quantity_kg": 9, "price": 280,
                                                  "place": "Koutiala", "valid_until": "2026-12-20"}, id="nul-in-a-code"),
        pytest.param("POST", "/api/v1/demands", {"buyer": "lawal", "crop": "onion", "quantity_kg": 9, "price": 280,
                                                  "place": "Kou\u0000tiala", "valid_until": "2026-12-20"}, id="nul-in-a-text"),
        pytest.param("POST", "/api/v1/tips", {"category": "gap", "title_fr": "T\u0007", "text_fr": "x"}, id="bell-in-a-title"),
        pytest.param("POST", "/api/v1/producers", {"phone": "+22370000052", "name": "A\u001bwa"}, id="escape-in-a-name"),
        pytest.param("GET", "/api/v1/prices?crop=to%00mato", None, id="nul-in-a-query"),
        pytest.param("POST", "/api/v1/producers", {"phone": "+22370000053", "subscriptions": [{"crop": "tomato ; drop", "market": "x"}]}, id="code-with-spaces"),
    ],
)
def test_control_characters_and_malformed_codes_are_422_and_store_nothing(client, tokens, db, method, path, body):
    with db.unit_of_work() as session:
        before = [session.exec(select(func.count()).select_from(t)).one() for t in (models.Demand, models.Tip, models.Producer)]
    response = call(client, method, path, tokens["editor"], json=body) if body else call(client, method, path, tokens["editor"])
    assert response.status_code == 422, response.text
    with db.unit_of_work() as session:
        after = [session.exec(select(func.count()).select_from(t)).one() for t in (models.Demand, models.Tip, models.Producer)]
    assert after == before


def test_demands_tips_and_producers(client, tokens, db):
    editor = tokens["editor"]
    demand = call(client, "POST", "/api/v1/demands", editor, json={
        "buyer": "lawal", "crop": "onion", "quantity_kg": 9000, "price": 280, "place": "Koutiala", "valid_until": "2026-12-20"}).json()
    assert demand["offered_kg"] == 0 and demand["status"] == "open"
    closed = call(client, "PATCH", f"/api/v1/demands/{demand['id']}", editor, json={"status": "closed"}).json()
    assert closed["status"] == "closed"
    assert call(client, "PATCH", "/api/v1/demands/99999", editor, json={"status": "closed"}).status_code == 404
    tip = call(client, "POST", "/api/v1/tips", editor, json={
        "category": "postharvest", "crop": "onion", "title_fr": "Séchage", "title_bm": "Jalan", "text_fr": "Séchez à l'ombre.", "text_bm": "A ja suma la."}).json()
    changed = call(client, "PUT", f"/api/v1/tips/{tip['id']}", editor, json={**tip, "title_fr": "Séchage à l'ombre"}).json()
    assert changed["title_fr"] == "Séchage à l'ombre" and changed["crop"] == "onion"
    producer = call(client, "POST", "/api/v1/producers", editor, json={
        "phone": "70 00 00 51", "name": "Awa", "language": "bm", "subscriptions": [{"crop": "tomato", "market": "sikasso"}]}).json()
    assert producer["phone"] == "+22370000051" and producer["subscriptions"] == [{"crop": "tomato", "market": "sikasso"}]
    again = call(client, "POST", "/api/v1/producers", editor, json={"phone": "+22370000051", "village": "Kignan"}).json()
    assert again["name"] == "Awa" and again["village"] == "Kignan"
    assert call(client, "POST", "/api/v1/producers", editor, json={"phone": "12"}).status_code == 422
    with db.unit_of_work() as session:
        entities = {a.entity for a in session.exec(select(models.AuditLog))}
    assert {"demand", "tip", "producer"} <= entities


def test_openapi_documents_the_api_with_bearer_tokens(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/v1/prices", "/api/v1/demands", "/api/v1/tips", "/api/v1/producers"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# -- language fields: any language configured in the console, not a list in the code -----------------

CONFIGURED = "fr (français), bm (bambara), ff (peul), ses (songhaï)"


@pytest.mark.parametrize("language, status, stored", [
    pytest.param("bm", 200, "bm", id="shipped"),
    pytest.param("ff", 200, "ff", id="voice-only-added-by-staff"),
    pytest.param("ses", 200, "ses", id="disabled-kept-in-a-profile"),
    pytest.param("de", 422, None, id="unknown-code"),
    pytest.param("FF", 422, None, id="not-a-code"),
    pytest.param("peul", 422, None, id="a-name-is-not-a-code"),
])
def test_a_producer_may_have_any_configured_language(client, tokens, db, language, status, stored):
    add_languages(db, FULFULDE, SONGHOY)
    response = call(client, "POST", "/api/v1/producers", tokens["editor"], json={"phone": "+22370000060", "language": language})
    assert response.status_code == status, response.text
    if status == 422 and language == "de":
        assert CONFIGURED in response.json()["detail"]
    with db.unit_of_work() as session:
        found = session.exec(select(models.Producer.language).where(models.Producer.phone == "+22370000060")).all()
    assert found == ([stored] if stored else [])


@pytest.mark.parametrize("language, said", [
    pytest.param("ses", "fr (français), bm (bambara)", id="disabled"),
    pytest.param("xx", "fr (français), bm (bambara)", id="unknown"),
])
def test_a_radio_bulletin_is_refused_in_a_language_calls_are_not_offered_in(client, tokens, db, language, said):
    add_languages(db, FULFULDE, SONGHOY)
    response = call(client, "GET", f"/api/v1/bulletins/Sikasso.mp3?language={language}", tokens["reporter"])
    assert response.status_code == 422 and said in response.json()["detail"], response.text


def test_a_radio_bulletin_is_made_in_a_voice_only_language(client, tokens, db):
    add_languages(db, FULFULDE, SONGHOY)
    response = call(client, "GET", "/api/v1/bulletins/Sikasso.mp3?language=ff", tokens["reporter"])
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg", response.text
    assert "-ff-" in response.headers["content-disposition"]


def test_openapi_language_fields_are_codes_checked_against_the_table(client):
    schema = client.get("/openapi.json").json()
    field = schema["components"]["schemas"]["ProducerIn"]["properties"]["language"]
    code = next(option for option in field["anyOf"] if option.get("type") == "string")
    assert code["pattern"] == "^[a-z]{2,3}$" and "enum" not in code and "configured" in field["description"]
    bulletin = schema["paths"]["/api/v1/bulletins/{region}.mp3"]["get"]["parameters"]
    param = next(p for p in bulletin if p["name"] == "language")
    assert param["schema"]["pattern"] == "^[a-z]{2,3}$" and "enum" not in param["schema"] and param["description"]

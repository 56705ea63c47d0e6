"""Staff JSON API (/api/v1): prices, demands, tips and producers for other tools (survey apps,
the national market observatory's exports). Each staff member has a token (console → Staff);
the same roles as the console apply, and every change is in the audit log."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, StringConstraints, field_validator
from sqlmodel import Session, col, select

from gateway.actions.imports import date_problem
from gateway.core.deps import DbId
from gateway.core.phones import InvalidPhone, parse_phone
from gateway.data import auth, languages, models, reference
from gateway.data.producers import ensure_producer, insert_ignore, set_role
from gateway.outbound import broadcast, corrections

router = APIRouter(prefix="/api/v1", tags=["staff API"])
bearer = HTTPBearer(auto_error=False, description="A staff member's API token (console → Staff → new API token)")

UNITS = Literal["kg", "sack50", "sack100", "basket", "crate", "pile"]
KINDS = Literal["wholesale", "retail"]
# Reference codes ("tomato", "sikasso", "lawal"): anything else is answered 422 before a query.
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
# A language's code (ISO 639: "fr", "bm", "ff", "ses"); which ones are accepted is data, checked
# against the language table (console → Languages) by _language, so the schema names no list.
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
# Control characters (a NUL byte, say) are refused in every text: PostgreSQL rejects NUL outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ApiModel(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value):
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value


def api_staff(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> auth.Staff:
    token = credentials.credentials if credentials else ""
    with request.app.state.db.unit_of_work() as session:
        staff = auth.staff_by_token(session, token)
    if staff is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid API token is required", headers={"WWW-Authenticate": "Bearer"})
    return staff


def api_roles(*allowed: str):
    def check(staff: Annotated[auth.Staff, Depends(api_staff)]) -> auth.Staff:
        if not staff.can(*allowed):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role does not allow this")
        return staff

    return check


PriceStaff = Annotated[auth.Staff, Depends(api_roles("editor", "reporter"))]
Editor = Annotated[auth.Staff, Depends(api_roles("editor"))]


def _now(request: Request) -> dt.datetime:
    return request.app.state.clock()


def _by_code(session: Session, model, code: str, what: str, *, active_only: bool = False) -> int:
    """A row's id by its code; new data (prices, demands, tips, subscriptions) only for active rows."""
    row = session.exec(select(model).where(model.code == code)).first()
    if row is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"unknown {what} code {code!r}")
    if active_only and not getattr(row, "active", True):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"{what} {code!r} is retired")
    return row.id


def _language(code: str, allowed, what: str) -> None:
    """422 naming the languages accepted here, when `code` is not one of them."""
    if code not in {lang.code for lang in allowed}:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            f"language {code!r} is not {what}; use one of: {languages.listed(allowed) or '-'}")


# -- reference ---------------------------------------------------------------------------------------


class CropOut(BaseModel):
    code: str
    name_fr: str
    name_bm: str
    default_unit: str
    active: bool = Field(description="false: retired (kept for history); prices for it are refused")


class MarketOut(BaseModel):
    code: str
    name: str
    region: str
    active: bool = Field(description="false: retired (kept for history); prices for it are refused")


@router.get("/crops", response_model=list[CropOut], summary="Crops and their codes")
def list_crops(request: Request, staff: Annotated[auth.Staff, Depends(api_staff)]):
    with request.app.state.db.unit_of_work() as session:
        return [CropOut(**c.model_dump()) for c in session.exec(select(models.Crop).order_by(models.Crop.sort_order))]


@router.get("/markets", response_model=list[MarketOut], summary="Markets and their codes")
def list_markets(request: Request, staff: Annotated[auth.Staff, Depends(api_staff)]):
    with request.app.state.db.unit_of_work() as session:
        return [MarketOut(**m.model_dump()) for m in session.exec(select(models.Market).order_by(models.Market.name))]


# -- prices ------------------------------------------------------------------------------------------


class PriceIn(ApiModel):
    date: dt.date
    market: Code = Field(description="market code, see /markets")
    crop: Code = Field(description="crop code, see /crops")
    price: int = Field(gt=0, le=10_000_000, description="FCFA per unit")
    unit: Code | None = Field(None, description="unit code (the active units); default: the crop's usual unit")
    kind: Code = Field("wholesale", description="price kind code (the active kinds)")


class PricesIn(ApiModel):
    prices: list[PriceIn] = Field(min_length=1, max_length=5000)
    alerts: bool = Field(True, description="send SMS alerts to the subscribers of the newest prices")
    acknowledge_outliers: bool = Field(
        False, description="publish prices far from the reference price (the enumerators' rule) anyway; "
        "without it such a price is refused with 422 naming it")


class CorrectionIn(ApiModel):
    price: int = Field(gt=0, le=10_000_000, description="the right value, FCFA per unit")
    unit: Code | None = Field(None, description="default: the corrected price's unit")
    kind: Code | None = Field(None, description="default: the corrected price's kind")
    reason: str = Field(min_length=1, max_length=corrections.REASON_MAX, description="why (kept in the audit log)")
    acknowledge_outliers: bool = False


class WithdrawalIn(ApiModel):
    reason: str = Field(min_length=1, max_length=corrections.REASON_MAX, description="why (kept in the audit log)")


class CorrectionSmsIn(ApiModel):
    confirm: bool = Field(description="true: queue the correction SMS (once per price)")


class PriceOut(BaseModel):
    id: int
    date: dt.date
    market: str
    crop: str
    price: int
    unit: str
    kind: str
    status: str
    source: str
    replaces_id: int | None = None


class CorrectionOut(BaseModel):
    old: PriceOut
    new: PriceOut | None = Field(None, description="the published value that replaces it (none after a withdrawal)")


class CorrectionSmsLanguage(BaseModel):
    language: str
    text: str
    encoding: str
    segments: int
    recipients: int
    estimated_cost: float


class CorrectionSmsOut(BaseModel):
    recipients: int
    estimated_cost: float
    languages: list[CorrectionSmsLanguage]
    broadcast: int | None = Field(None, description="the correction broadcast, once queued")


class PublishOut(BaseModel):
    created: list[int]
    already_present: int
    alert_broadcast: int | None


def _price_out(o: models.PriceObservation, crops: dict, markets: dict) -> PriceOut:
    return PriceOut(id=o.id, date=o.observed_on, market=markets[o.market_id], crop=crops[o.crop_id], price=o.price,
                    unit=o.unit, kind=o.kind, status=o.status, source=o.source, replaces_id=o.replaces_id)


@router.get("/prices", response_model=list[PriceOut], summary="Published prices, newest first")
def list_prices(
    request: Request,
    staff: PriceStaff,
    crop: Code | None = None,
    market: Code | None = None,
    since: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
):
    obs = models.PriceObservation
    with request.app.state.db.unit_of_work() as session:
        crops = {c.id: c.code for c in session.exec(select(models.Crop))}
        markets = {m.id: m.code for m in session.exec(select(models.Market))}
        query = select(obs).where(obs.status == "published")
        if crop:
            query = query.where(obs.crop_id == _by_code(session, models.Crop, crop, "crop"))
        if market:
            query = query.where(obs.market_id == _by_code(session, models.Market, market, "market"))
        if since:
            query = query.where(obs.observed_on >= since)
        rows = session.exec(query.order_by(col(obs.observed_on).desc(), col(obs.id).desc()).limit(limit)).all()
        return [_price_out(o, crops, markets) for o in rows]


@router.post("/prices", response_model=PublishOut, status_code=201, summary="Publish prices (and alert subscribers)")
def publish_prices(request: Request, body: PricesIn, staff: PriceStaff):
    now = _now(request)
    today = now.date()
    obs = models.PriceObservation
    with request.app.state.db.unit_of_work() as session:
        crops = {c.code: c for c in session.exec(select(models.Crop))}
        created, already, newest = [], 0, {}
        rows = []
        for item in body.prices:  # all checked before anything is written
            if (problem := date_problem(item.date, today)) is not None:  # the imports' rule too
                raise HTTPException(422, problem)
            crop = crops.get(item.crop)
            if crop is None:
                raise HTTPException(422, f"unknown crop code {item.crop!r}")
            if not crop.active:
                raise HTTPException(422, f"crop {item.crop!r} is retired")
            rows.append((item, crop, _by_code(session, models.Market, item.market, "market", active_only=True)))
        _check_units_and_outliers(session, rows, acknowledged=body.acknowledge_outliers,
                                  tolerance=request.app.state.settings.price_report_tolerance)
        for item, crop, market_id in rows:
            unit = item.unit or crop.default_unit
            duplicate = session.exec(
                select(obs.id).where(obs.crop_id == crop.id, obs.market_id == market_id, obs.observed_on == item.date,
                                     obs.unit == unit, obs.kind == item.kind, obs.price == item.price)
            ).first()
            if duplicate:
                already += 1
                continue
            row = obs(crop_id=crop.id, market_id=market_id, observed_on=item.date, price=item.price, unit=unit,
                      kind=item.kind, source=f"api:{staff.email}"[:64], created_at=now.astimezone(dt.timezone.utc))
            session.add(row)
            session.flush()
            created.append(row.id)
            pair = (crop.id, market_id)
            newest[pair] = max(newest.get(pair, item.date), item.date)
        alert = None
        if body.alerts and newest:
            alert = broadcast.publish_alerts(session, pairs=newest, now=now, title=f"API prices by {staff.email}")
        auth.audit(session, staff, action="publish", entity="prices", entity_id=f"api:{len(created)}",
                   after={"created": created, "already_present": already}, now=now)
    request.app.state.content_cache.clear()
    return PublishOut(created=created, already_present=already, alert_broadcast=alert.id if alert else None)


def _check_units_and_outliers(session: Session, rows, *, acknowledged: bool, tolerance: float) -> None:
    """Units and kinds from the reference tables; prices far from the reference price (the rule
    enumerators' reports pass) are refused unless acknowledged. A price already stored is not
    checked again, so that re-sending a batch stays idempotent."""
    units, kinds = corrections.active_codes(session, models.Unit), corrections.active_codes(session, models.PriceKind)
    obs = models.PriceObservation
    flagged = []
    for item, crop, market_id in rows:
        unit = item.unit or crop.default_unit
        if unit not in units:
            raise HTTPException(422, f"unknown unit {unit!r} (known: {', '.join(units)})")
        if item.kind not in kinds:
            raise HTTPException(422, f"unknown price kind {item.kind!r} (known: {', '.join(kinds)})")
        if acknowledged:
            continue
        stored = session.exec(
            select(obs.id).where(obs.crop_id == crop.id, obs.market_id == market_id, obs.observed_on == item.date,
                                 obs.unit == unit, obs.kind == item.kind, obs.price == item.price)
        ).first()
        found = None if stored else corrections.outlier(
            session, crop_id=crop.id, market_id=market_id, price=item.price, unit=unit, today=item.date, tolerance=tolerance)
        if found:
            flagged.append(f"{item.crop} at {item.market} on {item.date}: {item.price} F/{unit} is "
                           f"{found.ratio:.2g}x the reference price of {round(found.median)} F")
    if flagged:
        raise HTTPException(422, "prices far from the usual (send \"acknowledge_outliers\": true if they are right): "
                            + "; ".join(flagged))


def _price_maps(session: Session) -> tuple[dict, dict]:
    return ({c.id: c.code for c in session.exec(select(models.Crop))},
            {m.id: m.code for m in session.exec(select(models.Market))})


def _correction_error(exc: corrections.CorrectionError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.post("/prices/{price_id}/correct", response_model=CorrectionOut, summary="Correct a published price")
def correct_price(request: Request, price_id: DbId, body: CorrectionIn, staff: PriceStaff):
    """The published row is marked `corrected` and the right value published in its place
    (`replaces_id`); no alert goes out (see correction-sms for those who got the wrong value)."""
    now = _now(request)
    try:
        with request.app.state.db.unit_of_work() as session:
            old = session.get(models.PriceObservation, price_id)
            if old is None:
                raise corrections.NotFound(f"no price #{price_id}")
            unit = body.unit or old.unit
            found = corrections.outlier(session, crop_id=old.crop_id, market_id=old.market_id, price=body.price, unit=unit,
                                        today=old.observed_on, tolerance=request.app.state.settings.price_report_tolerance,
                                        ignore=old.id)
            if found and not body.acknowledge_outliers and old.status == "published":
                raise corrections.CorrectionError(
                    f"{body.price} F/{unit} is {found.ratio:.2g}x the reference price of {round(found.median)} F "
                    "(send \"acknowledge_outliers\": true if it is right)")
            new = corrections.correct(session, staff, obs_id=price_id, price=body.price, unit=body.unit, kind=body.kind,
                                      reason=body.reason, now=now)
            crops, markets = _price_maps(session)
            out = CorrectionOut(old=_price_out(session.get(models.PriceObservation, price_id), crops, markets),
                                new=_price_out(new, crops, markets))
    except corrections.CorrectionError as exc:
        raise _correction_error(exc) from None
    request.app.state.content_cache.clear()
    return out


@router.post("/prices/{price_id}/withdraw", response_model=CorrectionOut, summary="Withdraw a published price")
def withdraw_price(request: Request, price_id: DbId, body: WithdrawalIn, staff: PriceStaff):
    now = _now(request)
    try:
        with request.app.state.db.unit_of_work() as session:
            row = corrections.withdraw(session, staff, obs_id=price_id, reason=body.reason, now=now)
            out = CorrectionOut(old=_price_out(row, *_price_maps(session)))
    except corrections.CorrectionError as exc:
        raise _correction_error(exc) from None
    request.app.state.content_cache.clear()
    return out


def _sms_out(found: corrections.SmsPreview, broadcast_id: int | None) -> CorrectionSmsOut:
    return CorrectionSmsOut(recipients=found.recipients, estimated_cost=found.estimated_cost, broadcast=broadcast_id,
                            languages=[CorrectionSmsLanguage(**p.__dict__) for p in found.languages])


@router.get("/prices/{price_id}/correction-sms", response_model=CorrectionSmsOut,
            summary="Who received a corrected or withdrawn price in an alert, the SMS and its cost")
def correction_sms_preview(request: Request, price_id: DbId, staff: PriceStaff):
    try:
        with request.app.state.db.unit_of_work() as session:
            found = corrections.preview(session, price_id, request.app.state.catalog, request.app.state.settings)
            return _sms_out(found, found.already.id if found.already else None)
    except corrections.CorrectionError as exc:
        raise _correction_error(exc) from None


@router.post("/prices/{price_id}/correction-sms", response_model=CorrectionSmsOut, status_code=201,
             summary="Queue the correction SMS to those who received the wrong value (once)")
def correction_sms_send(request: Request, price_id: DbId, body: CorrectionSmsIn, staff: PriceStaff):
    if not body.confirm:
        raise HTTPException(422, "confirm must be true")
    try:
        with request.app.state.db.unit_of_work() as session:
            row, created = corrections.send_correction_sms(session, staff, obs_id=price_id, catalog=request.app.state.catalog,
                                                           settings=request.app.state.settings, now=_now(request))
            if not created:
                raise HTTPException(409, f"the correction SMS was already queued (broadcast #{row.id})")
            found = corrections.preview(session, price_id, request.app.state.catalog, request.app.state.settings)
            return _sms_out(found, row.id)
    except corrections.CorrectionError as exc:
        raise _correction_error(exc) from None


# -- demands -----------------------------------------------------------------------------------------


class DemandIn(ApiModel):
    buyer: Code = Field(description="buyer code")
    crop: Code
    quantity_kg: int = Field(gt=0, le=100_000_000)
    price: int = Field(gt=0, le=10_000_000)
    unit: Code = Field("kg", description="an active unit's code, see /units")
    place: str = Field(min_length=1, max_length=80)
    valid_until: dt.date


class DemandPatch(ApiModel):
    quantity_kg: int | None = Field(None, gt=0, le=100_000_000)
    price: int | None = Field(None, gt=0, le=10_000_000)
    place: str | None = Field(None, min_length=1, max_length=80)
    valid_until: dt.date | None = None
    status: Literal["open", "closed"] | None = None


class DemandOut(BaseModel):
    id: int
    buyer: str
    crop: str
    quantity_kg: int
    price: int
    unit: str
    place: str
    valid_until: dt.date
    status: str
    offered_kg: int


def _demand_out(session: Session, d: models.Demand) -> DemandOut:
    from sqlalchemy import func

    offered = session.exec(
        select(func.coalesce(func.sum(models.Offer.quantity_kg), 0)).where(models.Offer.demand_id == d.id, models.Offer.status != "declined")
    ).one()
    return DemandOut(id=d.id, buyer=session.get(models.Buyer, d.buyer_id).code, crop=session.get(models.Crop, d.crop_id).code,
                     quantity_kg=d.quantity_kg, price=d.price, unit=d.unit, place=d.place, valid_until=d.valid_until,
                     status=d.status, offered_kg=int(offered))


@router.get("/demands", response_model=list[DemandOut], summary="Buyers' demands with the quantity offered so far")
def list_demands(request: Request, staff: Editor, status_: Annotated[str | None, Query(alias="status")] = None):
    with request.app.state.db.unit_of_work() as session:
        query = select(models.Demand).order_by(models.Demand.id)
        if status_:
            query = query.where(models.Demand.status == status_)
        return [_demand_out(session, d) for d in session.exec(query)]


@router.post("/demands", response_model=DemandOut, status_code=201, summary="Post a buyer's demand")
def create_demand(request: Request, body: DemandIn, staff: Editor):
    now = _now(request)
    with request.app.state.db.unit_of_work() as session:
        # Units are reference data (the `unit` table): only active ones are offered.
        units = reference.active_unit_codes(session)
        if body.unit not in units:
            raise HTTPException(422, f"unknown unit {body.unit!r} (known: {', '.join(units)})")
        crop = reference.by_code(session, "crop", body.crop)
        if crop is not None and not crop.active:
            raise HTTPException(422, f"crop {body.crop!r} is retired")
        demand = models.Demand(
            buyer_id=_by_code(session, models.Buyer, body.buyer, "buyer"), crop_id=_by_code(session, models.Crop, body.crop, "crop", active_only=True),
            quantity_kg=body.quantity_kg, price=body.price, unit=body.unit, place=body.place, valid_until=body.valid_until,
            created_at=now.astimezone(dt.timezone.utc),
        )
        session.add(demand)
        session.flush()
        auth.audit(session, staff, action="create", entity="demand", entity_id=demand.id, after=body.model_dump(), now=now)
        out = _demand_out(session, demand)
    request.app.state.content_cache.clear()
    return out


@router.patch("/demands/{demand_id}", response_model=DemandOut, summary="Change or close a demand")
def update_demand(request: Request, demand_id: DbId, body: DemandPatch, staff: Editor):
    now = _now(request)
    with request.app.state.db.unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "no such demand")
        changes = body.model_dump(exclude_none=True)
        before = auth.snapshot(demand, tuple(changes))
        for name, value in changes.items():
            setattr(demand, name, value)
        session.add(demand)
        auth.audit(session, staff, action="edit", entity="demand", entity_id=demand_id, before=before, after=changes, now=now)
        out = _demand_out(session, demand)
    request.app.state.content_cache.clear()
    return out


# -- tips --------------------------------------------------------------------------------------------


class TipIn(ApiModel):
    category: Literal["gap", "postharvest", "nutrition"]
    crop: Code | None = None
    title_fr: str = Field(min_length=1, max_length=60)
    title_bm: str = Field("", max_length=60)
    text_fr: str = Field(min_length=1, max_length=1000)
    text_bm: str = Field("", max_length=1000)
    active: bool = True


class TipOut(TipIn):
    id: int


def _tip_out(session: Session, t: models.Tip) -> TipOut:
    crop = session.get(models.Crop, t.crop_id).code if t.crop_id else None
    return TipOut(id=t.id, category=t.category, crop=crop, title_fr=t.title_fr, title_bm=t.title_bm,
                  text_fr=t.text_fr, text_bm=t.text_bm, active=t.active)


@router.get("/tips", response_model=list[TipOut], summary="Tips in both languages")
def list_tips(request: Request, staff: Editor):
    with request.app.state.db.unit_of_work() as session:
        return [_tip_out(session, t) for t in session.exec(select(models.Tip).order_by(models.Tip.id))]


@router.post("/tips", response_model=TipOut, status_code=201, summary="Add a tip")
def create_tip(request: Request, body: TipIn, staff: Editor):
    return save_tip(request, body, staff, None)


@router.put("/tips/{tip_id}", response_model=TipOut, summary="Replace a tip")
def replace_tip(request: Request, tip_id: DbId, body: TipIn, staff: Editor):
    return save_tip(request, body, staff, tip_id)


def save_tip(request: Request, body: TipIn, staff: auth.Staff, tip_id: int | None):
    now = _now(request)
    with request.app.state.db.unit_of_work() as session:
        tip = session.get(models.Tip, tip_id) if tip_id is not None else models.Tip(**body.model_dump(exclude={"crop"}))
        if tip is None:
            raise HTTPException(404, "no such tip")
        before = tip.model_dump() if tip_id is not None else None
        for name, value in body.model_dump(exclude={"crop"}).items():
            setattr(tip, name, value)
        tip.crop_id = _by_code(session, models.Crop, body.crop, "crop", active_only=True) if body.crop else None
        session.add(tip)
        session.flush()
        auth.audit(session, staff, action="edit" if tip_id else "create", entity="tip", entity_id=tip.id,
                   before=before, after=body.model_dump(), now=now)
        out = _tip_out(session, tip)
    request.app.state.content_cache.clear()
    return out


# -- producers ---------------------------------------------------------------------------------------


class SubscriptionIn(ApiModel):
    crop: Code
    market: Code


class ProducerIn(ApiModel):
    phone: str
    name: str = Field("", max_length=80)
    language: LanguageCode | None = Field(
        None, description="Any language configured in the console (Languages), enabled or not, written or "
                          "voice-only: its code (fr, bm, ff...). A voice-only language's farmers read USSD and SMS "
                          "in French and hear calls in theirs. Absent: unchanged."
    )
    village: str = Field("", max_length=80)
    region: str = Field("", max_length=64)
    cluster: str = Field("", max_length=80)
    subscriptions: list[SubscriptionIn] = Field(default_factory=list, max_length=50)
    role: Literal["producer", "enumerator"] | None = Field(
        None, description="enumerator: may report market prices by SMS; producer: may not (unmakes an "
                          "enumerator); absent: unchanged. Audited."
    )

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        try:
            return parse_phone(value)
        except InvalidPhone as exc:
            raise ValueError(str(exc)) from None


class ProducerOut(BaseModel):
    id: int
    phone: str
    name: str
    language: str | None
    village: str
    region: str
    cluster: str
    opted_out: bool
    role: str
    subscriptions: list[SubscriptionIn]


def _producer_out(session: Session, p: models.Producer) -> ProducerOut:
    s = models.Subscription
    subs = session.exec(
        select(models.Crop.code, models.Market.code)
        .select_from(s)
        .join(models.Crop, models.Crop.id == s.crop_id)
        .join(models.Market, models.Market.id == s.market_id)
        .where(s.producer_id == p.id)
        .order_by(s.id)
    ).all()
    return ProducerOut(id=p.id, phone=p.phone, name=p.name, language=p.language, village=p.village, region=p.region,
                       cluster=p.cluster, opted_out=p.opted_out, role=p.role,
                       subscriptions=[SubscriptionIn(crop=c, market=m) for c, m in subs])


@router.get("/producers", response_model=list[ProducerOut], summary="Find producers by phone or name")
def list_producers(request: Request, staff: Editor, phone: str | None = None, q: str | None = None,
                   role: Literal["producer", "enumerator"] | None = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    p = models.Producer
    with request.app.state.db.unit_of_work() as session:
        query = select(p).order_by(p.id).limit(limit)
        if phone:
            try:
                query = query.where(p.phone == parse_phone(phone))
            except InvalidPhone as exc:
                raise HTTPException(422, f"phone: {exc}") from None
        if q:
            query = query.where(col(p.name).ilike(f"%{q}%"))
        if role:
            query = query.where(p.role == role)
        return [_producer_out(session, row) for row in session.exec(query)]


@router.post("/producers", response_model=ProducerOut, summary="Create or update a producer by phone")
def upsert_producer(request: Request, body: ProducerIn, staff: Editor):
    now = _now(request)
    with request.app.state.db.unit_of_work() as session:
        if body.language:
            _language(body.language, languages.rows(session), "a configured language")
        pairs = [(_by_code(session, models.Crop, s.crop, "crop"), _by_code(session, models.Market, s.market, "market"))
                 for s in body.subscriptions]
        producer = ensure_producer(session, body.phone)
        before = auth.snapshot(producer, ("name", "language", "village", "region", "cluster", "role"))
        for name in ("name", "village", "region", "cluster"):
            value = getattr(body, name).strip()
            if value:
                setattr(producer, name, value)
        if body.language:
            producer.language = body.language
        if body.role:
            set_role(session, producer, body.role, staff=staff, now=now, via="api")
        producer.updated_at = now.astimezone(dt.timezone.utc)
        session.add(producer)
        for crop_id, market_id in pairs:
            insert_ignore(session, models.Subscription,
                          {"producer_id": producer.id, "crop_id": crop_id, "market_id": market_id,
                           "created_at": now.astimezone(dt.timezone.utc)},
                          ["producer_id", "crop_id", "market_id"])
        auth.audit(session, staff, action="upsert", entity="producer", entity_id=producer.phone, before=before,
                   after=body.model_dump(exclude={"subscriptions"}), now=now)
        return _producer_out(session, producer)


# -- the weekly radio bulletin ---------------------------------------------------------------------


@router.get(
    "/bulletins/{region}.mp3",
    response_class=Response,
    responses={200: {"content": {"audio/mpeg": {}}, "description": "The bulletin, about one to two minutes"}},
    summary="This week's radio bulletin of a region (MP3), for community radio stations",
)
def radio_bulletin(request: Request, region: str, staff: PriceStaff,
                   language: Annotated[LanguageCode, Query(
                       description="An enabled voice language's code (fr, bm, and any configured one, voice-only "
                                   "languages included: their bulletin is said in their recordings)")] = "fr"):
    from gateway.data.content import current_catalog
    from gateway.data.dataview import CachedDataView
    from gateway.voice import bulletin

    state = request.app.state
    with state.db.unit_of_work() as session:
        try:
            made = bulletin.make(session, region=region, language=language, today=state.clock().date(),
                                 catalog=current_catalog(session, state.content_cache),
                                 data=CachedDataView(session, state.content_cache),
                                 prompt_audio=state.prompt_audio)
        except bulletin.NoSuchBulletin as missing:
            if missing.what == "region":
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such region") from None
            spoken = [lang for lang in languages.rows(session) if lang.enabled and lang.voice]
            _language(language, spoken, "an enabled voice language")
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                                "language: not an enabled voice language") from None
    name = bulletin.download_name(region, language, made.week_of)
    return Response(made.mp3, media_type="audio/mpeg",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

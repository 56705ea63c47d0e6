"""reference data managed by staff (regions, units, price kinds; market and crop details);
price corrections

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:30:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

S = sqlmodel.sql.sqltypes.AutoString

# The units and kinds the code knew before they became data, with the catalog's names.
UNITS = [
    ("kg", "kg", "kg", 1.0, "kilo, kilos, kgs", 0),
    ("sack50", "sac 50kg", "bɔrɔ 50kg", 50.0, "sac, sacs, sac50, sac 50 kg, 50 kg, boro", 1),
    ("sack100", "sac 100kg", "bɔrɔ 100kg", 100.0, "sac100, sac 100 kg, 100 kg", 2),
    ("basket", "panier", "panye", None, "paniers", 3),
    ("crate", "caisse", "kɛsu", None, "caisses, kesu", 4),
    ("pile", "tas", "tas", None, "", 5),
]
KINDS = [("wholesale", "gros", "gros", "gros, wholesale", 0), ("retail", "détail", "détail", "detail, retail", 1)]


def upgrade() -> None:
    region = op.create_table('region',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', S(length=32), nullable=False),
    sa.Column('name_fr', S(length=64), nullable=False),
    sa.Column('name_bm', S(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region')),
    sa.UniqueConstraint('code', name=op.f('uq_region_code')),
    sa.UniqueConstraint('name_fr', name=op.f('uq_region_name_fr'))
    )
    unit = op.create_table('unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', S(length=16), nullable=False),
    sa.Column('name_fr', S(length=32), nullable=False),
    sa.Column('name_bm', S(length=32), nullable=False),
    sa.Column('kg', sa.Float(), nullable=True),
    sa.Column('aliases', S(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit')),
    sa.UniqueConstraint('code', name=op.f('uq_unit_code'))
    )
    kind = op.create_table('price_kind',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', S(length=16), nullable=False),
    sa.Column('name_fr', S(length=32), nullable=False),
    sa.Column('name_bm', S(length=32), nullable=False),
    sa.Column('aliases', S(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_kind')),
    sa.UniqueConstraint('code', name=op.f('uq_price_kind_code'))
    )
    with op.batch_alter_table('crop', schema=None) as batch_op:
        batch_op.add_column(sa.Column('aliases', S(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('category', S(length=32), nullable=False, server_default='vegetable'))
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('market', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_bm', S(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('aliases', S(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('latitude', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('longitude', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaces_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('changed_by', S(length=120), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_price_observation_replaces_id_price_observation'), 'price_observation', ['replaces_id'], ['id'])

    # What was code becomes data: the regions markets name, the units and kinds prices use.
    conn = op.get_bind()
    names = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT region FROM market WHERE region <> ''"))]
    codes: set[str] = set()
    rows = []
    for order, name in enumerate(sorted(names)):
        code = _code(name, codes)
        rows.append({"code": code, "name_fr": name, "name_bm": name, "active": True, "sort_order": order})
    if rows:
        op.bulk_insert(region, rows)
    op.bulk_insert(unit, [
        {"code": c, "name_fr": fr, "name_bm": bm, "kg": kg, "aliases": al, "active": True, "sort_order": o}
        for c, fr, bm, kg, al, o in UNITS
    ])
    op.bulk_insert(kind, [
        {"code": c, "name_fr": fr, "name_bm": bm, "aliases": al, "active": True, "sort_order": o}
        for c, fr, bm, al, o in KINDS
    ])


def _code(name: str, taken: set[str]) -> str:
    import re
    import unicodedata

    base = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()).strip("-") or "region"
    code, n = base[:32], 2
    while code in taken:
        code, n = f"{base[:28]}-{n}", n + 1
    taken.add(code)
    return code


def downgrade() -> None:
    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_price_observation_replaces_id_price_observation'), type_='foreignkey')
        batch_op.drop_column('changed_at')
        batch_op.drop_column('changed_by')
        batch_op.drop_column('replaces_id')
    with op.batch_alter_table('market', schema=None) as batch_op:
        batch_op.drop_column('active')
        batch_op.drop_column('longitude')
        batch_op.drop_column('latitude')
        batch_op.drop_column('aliases')
        batch_op.drop_column('name_bm')
    with op.batch_alter_table('crop', schema=None) as batch_op:
        batch_op.drop_column('active')
        batch_op.drop_column('category')
        batch_op.drop_column('aliases')
    op.drop_table('price_kind')
    op.drop_table('unit')
    op.drop_table('region')

"""languages are data: a `language` table staff manage in the console (written and/or voice,
enabled, order, the fallback for recordings and number speech), seeded with French and Bambara;
the farmers' language columns widened to 3 letters for ISO 639-3 codes ("ses", "khq")

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-02 09:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0014'
down_revision: Union[str, None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The columns that hold a farmer's language, or the language a session or message was in.
WIDENED = (
    ('producer', True),
    ('ussd_session', True),
    ('sms_message', True),
    ('voice_session', True),
    ('voice_call', False),
)


def _widen(length_from: int, length_to: int) -> None:
    for table, nullable in WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('language', existing_type=sqlmodel.sql.sqltypes.AutoString(length=length_from),
                                  type_=sqlmodel.sql.sqltypes.AutoString(length=length_to),
                                  existing_nullable=nullable)


def upgrade() -> None:
    language = op.create_table('language',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name_fr', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('written', sa.Boolean(), nullable=False),
    sa.Column('voice', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('fallback', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_language'))
    )
    # The two languages Sugu has always spoken: written and by voice. French falls back on nothing.
    stamp = sa.func.current_timestamp()
    op.execute(language.insert().values([
        {'code': 'fr', 'name': 'Français', 'name_fr': 'français', 'written': True, 'voice': True, 'enabled': True,
         'sort_order': 1, 'fallback': '', 'created_at': stamp, 'updated_at': stamp},
        {'code': 'bm', 'name': 'Bamanankan', 'name_fr': 'bambara', 'written': True, 'voice': True, 'enabled': True,
         'sort_order': 2, 'fallback': 'fr', 'created_at': stamp, 'updated_at': stamp},
    ]))
    _widen(2, 3)


def downgrade() -> None:
    _widen(3, 2)
    op.drop_table('language')

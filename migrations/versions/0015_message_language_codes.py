"""staff's texts in any written language: message_override and message_revision's language
widened to 3 letters, as the farmers' language columns were in 0014 (a written Songhoy, "ses",
edited on the Texts page)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:00:00
"""
from typing import Sequence, Union

import sqlmodel
from alembic import op


revision: str = '0015'
down_revision: Union[str, None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ('message_override', 'message_revision')


def _widen(length_from: int, length_to: int) -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('language', existing_type=sqlmodel.sql.sqltypes.AutoString(length=length_from),
                                  type_=sqlmodel.sql.sqltypes.AutoString(length=length_to), existing_nullable=False)


def upgrade() -> None:
    _widen(2, 3)


def downgrade() -> None:
    _widen(3, 2)

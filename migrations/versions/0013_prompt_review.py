"""prompt review: a staff recording of a voice prompt waits for another editor's approval
(pending, approved, rejected), with who reviewed it, when and why; recordings made before are
pending

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0013'
down_revision: Union[str, None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('audio_prompt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review', sqlmodel.sql.sqltypes.AutoString(length=16), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=120), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_note', sqlmodel.sql.sqltypes.AutoString(length=200), server_default='', nullable=False))
    # Nobody has reviewed the recordings already made: they wait for it, and keep playing.
    op.execute("UPDATE audio_prompt SET review = 'pending' WHERE source <> 'synthetic'")


def downgrade() -> None:
    with op.batch_alter_table('audio_prompt', schema=None) as batch_op:
        batch_op.drop_column('review_note')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('review')

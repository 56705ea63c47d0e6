"""outbox leases: a claimed SMS row names its claimer, whose lease (worker_lease) expires unless renewed; a broadcast says why
it waits for approval

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0010'
down_revision: Union[str, None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'worker_lease',
        sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('owner', name=op.f('pk_worker_lease')),
    )
    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table('broadcast', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('hold_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default='')
        )


def downgrade() -> None:
    with op.batch_alter_table('broadcast', schema=None) as batch_op:
        batch_op.drop_column('hold_reason')
    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.drop_column('lease_owner')
    op.drop_table('worker_lease')

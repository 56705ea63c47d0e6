"""broadcaster

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 09:09:33.645963
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('broadcast',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('text_fr', sa.Text(), nullable=False),
    sa.Column('text_bm', sa.Text(), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expanded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcast'))
    )
    with op.batch_alter_table('broadcast', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_broadcast_status'), ['status'], unique=False)

    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('broadcast_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('part', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_sms_message_broadcast_id'), ['broadcast_id'], unique=False)
        batch_op.create_index('ix_sms_message_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_sms_message_broadcast_id_phone_part'), ['broadcast_id', 'phone', 'part'])
        batch_op.create_foreign_key(batch_op.f('fk_sms_message_broadcast_id_broadcast'), 'broadcast', ['broadcast_id'], ['id'])

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('threshold_percent', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_subscription_crop_market', ['crop_id', 'market_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index('ix_subscription_crop_market')
        batch_op.drop_column('threshold_percent')

    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sms_message_broadcast_id_broadcast'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_sms_message_broadcast_id_phone_part'), type_='unique')
        batch_op.drop_index('ix_sms_message_due')
        batch_op.drop_index(batch_op.f('ix_sms_message_broadcast_id'))
        batch_op.drop_column('part')
        batch_op.drop_column('broadcast_id')

    with op.batch_alter_table('broadcast', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_broadcast_status'))

    op.drop_table('broadcast')

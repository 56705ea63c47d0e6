"""sms channel

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:57:11.754660
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('sms_inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('provider_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('to', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('link_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('network_code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('cost', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('intent', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_inbound')),
    sa.UniqueConstraint('provider', 'provider_id', name=op.f('uq_sms_inbound_provider_provider_id'))
    )
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_inbound_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_inbound_phone'), ['phone'], unique=False)

    op.create_table('sms_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('encoding', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('provider_status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('failure_reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('error_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('cost', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('cost_amount', sa.Float(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('inbound_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['sms_inbound.id'], name=op.f('fk_sms_message_inbound_id_sms_inbound')),
    sa.ForeignKeyConstraint(['producer_id'], ['producer.id'], name=op.f('fk_sms_message_producer_id_producer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_message'))
    )
    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_message_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_message_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_message_producer_id'), ['producer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_message_provider_message_id'), ['provider_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_message_status'), ['status'], unique=False)

    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reported_by_id', sa.Integer(), nullable=True))
        # Existing rows need a value: the server default fills them.
        batch_op.add_column(sa.Column('review_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_price_observation_status'), ['status'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_price_observation_reported_by_id_producer'), 'producer', ['reported_by_id'], ['id'])

    with op.batch_alter_table('producer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='producer'))



def downgrade() -> None:
    with op.batch_alter_table('producer', schema=None) as batch_op:
        batch_op.drop_column('role')

    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_price_observation_reported_by_id_producer'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_price_observation_status'))
        batch_op.drop_column('review_reason')
        batch_op.drop_column('reported_by_id')

    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_message_status'))
        batch_op.drop_index(batch_op.f('ix_sms_message_provider_message_id'))
        batch_op.drop_index(batch_op.f('ix_sms_message_producer_id'))
        batch_op.drop_index(batch_op.f('ix_sms_message_phone'))
        batch_op.drop_index(batch_op.f('ix_sms_message_created_at'))

    op.drop_table('sms_message')
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_inbound_phone'))
        batch_op.drop_index(batch_op.f('ix_sms_inbound_created_at'))

    op.drop_table('sms_inbound')

"""buyer matching and services directory

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 12:07:45.266044
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('service',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('summary_fr', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('summary_bm', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service'))
    )
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.create_index('ix_service_category_region', ['category', 'region'], unique=False)

    op.create_table('buyer_summary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('offers', sa.Integer(), nullable=False),
    sa.Column('last_offer_id', sa.Integer(), nullable=False),
    sa.Column('sms_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['buyer.id'], name=op.f('fk_buyer_summary_buyer_id_buyer')),
    sa.ForeignKeyConstraint(['sms_id'], ['sms_message.id'], name=op.f('fk_buyer_summary_sms_id_sms_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_summary')),
    sa.UniqueConstraint('buyer_id', 'day', name=op.f('uq_buyer_summary_buyer_id_day'))
    )
    op.create_table('service_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('session_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('sms_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['producer_id'], ['producer.id'], name=op.f('fk_service_request_producer_id_producer')),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_service_request_service_id_service')),
    sa.ForeignKeyConstraint(['sms_id'], ['sms_message.id'], name=op.f('fk_service_request_sms_id_sms_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_request')),
    sa.UniqueConstraint('service_id', 'producer_id', 'session_ref', name=op.f('uq_service_request_service_id_producer_id_session_ref'))
    )
    with op.batch_alter_table('service_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_request_producer_id'), ['producer_id'], unique=False)

    with op.batch_alter_table('buyer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_summary', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notified_sms_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_offer_notified_sms_id_sms_message'), 'sms_message', ['notified_sms_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_offer_notified_sms_id_sms_message'), type_='foreignkey')
        batch_op.drop_column('notified_sms_id')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decided_by')

    with op.batch_alter_table('buyer', schema=None) as batch_op:
        batch_op.drop_column('daily_summary')

    with op.batch_alter_table('service_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_request_producer_id'))

    op.drop_table('service_request')
    op.drop_table('buyer_summary')
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.drop_index('ix_service_category_region')

    op.drop_table('service')

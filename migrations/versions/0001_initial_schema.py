"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 08:57:10.577554
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0001'
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('buyer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('contact_name', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer')),
    sa.UniqueConstraint('code', name=op.f('uq_buyer_code'))
    )
    op.create_table('crop',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name_fr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name_bm', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('default_unit', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crop')),
    sa.UniqueConstraint('code', name=op.f('uq_crop_code'))
    )
    op.create_table('market',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market')),
    sa.UniqueConstraint('code', name=op.f('uq_market_code'))
    )
    with op.batch_alter_table('market', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_region'), ['region'], unique=False)

    op.create_table('producer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('village', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('cluster', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_producer')),
    sa.UniqueConstraint('phone', name=op.f('uq_producer_phone'))
    )
    op.create_table('ussd_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('service_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('network_code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('start_profile', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hops', sa.Integer(), nullable=False),
    sa.Column('last_screen', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('end_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('end_cost', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('end_duration_ms', sa.Integer(), nullable=True),
    sa.Column('end_hops', sa.Integer(), nullable=True),
    sa.Column('end_error', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ussd_session')),
    sa.UniqueConstraint('session_id', name=op.f('uq_ussd_session_session_id'))
    )
    with op.batch_alter_table('ussd_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ussd_session_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_ussd_session_started_at'), ['started_at'], unique=False)

    op.create_table('demand',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('crop_id', sa.Integer(), nullable=False),
    sa.Column('quantity_kg', sa.Integer(), nullable=False),
    sa.Column('price', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['buyer.id'], name=op.f('fk_demand_buyer_id_buyer')),
    sa.ForeignKeyConstraint(['crop_id'], ['crop.id'], name=op.f('fk_demand_crop_id_crop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_demand'))
    )
    with op.batch_alter_table('demand', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_demand_buyer_id'), ['buyer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_demand_status'), ['status'], unique=False)

    op.create_table('price_observation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('crop_id', sa.Integer(), nullable=False),
    sa.Column('market_id', sa.Integer(), nullable=False),
    sa.Column('observed_on', sa.Date(), nullable=False),
    sa.Column('price', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['crop_id'], ['crop.id'], name=op.f('fk_price_observation_crop_id_crop')),
    sa.ForeignKeyConstraint(['market_id'], ['market.id'], name=op.f('fk_price_observation_market_id_market')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_observation'))
    )
    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.create_index('ix_price_crop_market_day', ['crop_id', 'market_id', 'observed_on'], unique=False)

    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('crop_id', sa.Integer(), nullable=False),
    sa.Column('market_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['crop_id'], ['crop.id'], name=op.f('fk_subscription_crop_id_crop')),
    sa.ForeignKeyConstraint(['market_id'], ['market.id'], name=op.f('fk_subscription_market_id_market')),
    sa.ForeignKeyConstraint(['producer_id'], ['producer.id'], name=op.f('fk_subscription_producer_id_producer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription')),
    sa.UniqueConstraint('producer_id', 'crop_id', 'market_id', name=op.f('uq_subscription_producer_id_crop_id_market_id'))
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_producer_id'), ['producer_id'], unique=False)

    op.create_table('tip',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('crop_id', sa.Integer(), nullable=True),
    sa.Column('title_fr', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('title_bm', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('text_fr', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('text_bm', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['crop_id'], ['crop.id'], name=op.f('fk_tip_crop_id_crop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tip'))
    )
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tip_category'), ['category'], unique=False)

    op.create_table('offer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('demand_id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('quantity_kg', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('session_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['demand_id'], ['demand.id'], name=op.f('fk_offer_demand_id_demand')),
    sa.ForeignKeyConstraint(['producer_id'], ['producer.id'], name=op.f('fk_offer_producer_id_producer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offer')),
    sa.UniqueConstraint('demand_id', 'producer_id', 'session_ref', name=op.f('uq_offer_demand_id_producer_id_session_ref'))
    )
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offer_demand_id'), ['demand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_offer_producer_id'), ['producer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_producer_id'))
        batch_op.drop_index(batch_op.f('ix_offer_demand_id'))

    op.drop_table('offer')
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tip_category'))

    op.drop_table('tip')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_producer_id'))

    op.drop_table('subscription')
    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.drop_index('ix_price_crop_market_day')

    op.drop_table('price_observation')
    with op.batch_alter_table('demand', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_demand_status'))
        batch_op.drop_index(batch_op.f('ix_demand_buyer_id'))

    op.drop_table('demand')
    with op.batch_alter_table('ussd_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ussd_session_started_at'))
        batch_op.drop_index(batch_op.f('ix_ussd_session_phone'))

    op.drop_table('ussd_session')
    op.drop_table('producer')
    with op.batch_alter_table('market', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_region'))

    op.drop_table('market')
    op.drop_table('crop')
    op.drop_table('buyer')

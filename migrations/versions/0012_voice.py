"""voice: the calls Sugu places (missed-call callbacks, voice alerts: one per broadcast and
phone) with their leases; a call's profile snapshot, menu inputs and the keys last said; audio
by content hash (recordings, synthetic prompts, joined playlists); prompt revisions per clip;
how each producer gets alerts (sms, voice, both)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:20:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0012'
down_revision: Union[str, None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('audio_blob',
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_audio_blob'))
    )
    op.create_table('voice_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('start_profile', sa.JSON(), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('keys', sa.JSON(), nullable=False),
    sa.Column('voice_page', sa.Integer(), nullable=False),
    sa.Column('silences', sa.Integer(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('last_screen', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('section', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_s', sa.Integer(), nullable=True),
    sa.Column('amount', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('hangup_cause', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_session')),
    sa.UniqueConstraint('session_id', name=op.f('uq_voice_session_session_id'))
    )
    with op.batch_alter_table('voice_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_session_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_session_started_at'), ['started_at'], unique=False)

    op.create_table('audio_prompt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clip', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('audio_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['audio_hash'], ['audio_blob.hash'], name=op.f('fk_audio_prompt_audio_hash_audio_blob')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name=op.f('fk_audio_prompt_staff_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audio_prompt')),
    sa.UniqueConstraint('clip', 'revision', name=op.f('uq_audio_prompt_clip_revision'))
    )
    with op.batch_alter_table('audio_prompt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audio_prompt_clip'), ['clip'], unique=False)
        batch_op.create_index(batch_op.f('ix_audio_prompt_language'), ['language'], unique=False)

    op.create_table('voice_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('pending_phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('broadcast_id', sa.Integer(), nullable=True),
    sa.Column('pairs', sa.JSON(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('client_request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('minutes_reserved', sa.Integer(), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=True),
    sa.Column('amount', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcast.id'], name=op.f('fk_voice_call_broadcast_id_broadcast')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_call')),
    sa.UniqueConstraint('broadcast_id', 'phone', name=op.f('uq_voice_call_broadcast_id_phone')),
    sa.UniqueConstraint('client_request_id', name=op.f('uq_voice_call_client_request_id')),
    sa.UniqueConstraint('pending_phone', name=op.f('uq_voice_call_pending_phone'))
    )
    with op.batch_alter_table('voice_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_call_broadcast_id'), ['broadcast_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_call_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_call_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_call_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_call_status'), ['status'], unique=False)

    with op.batch_alter_table('producer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_channel', sqlmodel.sql.sqltypes.AutoString(length=8), server_default='sms', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('producer', schema=None) as batch_op:
        batch_op.drop_column('alert_channel')

    with op.batch_alter_table('voice_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_call_status'))
        batch_op.drop_index(batch_op.f('ix_voice_call_session_id'))
        batch_op.drop_index(batch_op.f('ix_voice_call_phone'))
        batch_op.drop_index(batch_op.f('ix_voice_call_due_at'))
        batch_op.drop_index(batch_op.f('ix_voice_call_broadcast_id'))

    op.drop_table('voice_call')
    with op.batch_alter_table('audio_prompt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audio_prompt_language'))
        batch_op.drop_index(batch_op.f('ix_audio_prompt_clip'))

    op.drop_table('audio_prompt')
    with op.batch_alter_table('voice_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_session_started_at'))
        batch_op.drop_index(batch_op.f('ix_voice_session_phone'))

    op.drop_table('voice_session')
    op.drop_table('audio_blob')

"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 16:17:31.948152
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
import bot.store.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_token',
    sa.Column('app_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('expires_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('fetched_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('app_id')
    )
    op.create_table('apscheduler_jobs',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apscheduler_jobs_next_run_time'), ['next_run_time'], unique=False)

    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('loaded_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_slug'), ['slug'], unique=True)

    op.create_table('conversation',
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('flow', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('openid')
    )
    op.create_table('inbound_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('msg_type', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('received_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('claimed', 'answered', 'deferred', 'failed', name='inboundstatus', native_enum=False, length=20), nullable=False),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('answered_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('openid', 'dedupe_key')
    )
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_message_openid'), ['openid'], unique=False)

    op.create_table('scheduler_lease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('expires_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('deadline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('collects', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('rule', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'key')
    )
    with op.batch_alter_table('deadline', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deadline_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('media_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('media_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('inbound_message_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('next_attempt_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.Column('received_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('stored_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('media_id')
    )
    with op.batch_alter_table('media_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_file_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_file_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_media_file_status'), ['status'], unique=False)

    op.create_table('unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('join_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('liaison_mobile', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'name'),
    sa.UniqueConstraint('join_code')
    )
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('deadline_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deadline_id', sa.Integer(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('due_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['deadline_id'], ['deadline.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('deadline_id', 'period')
    )
    with op.batch_alter_table('deadline_period', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deadline_period_deadline_id'), ['deadline_id'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('errcode', sa.Integer(), nullable=True),
    sa.Column('errmsg', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('wechat_msg_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('job_status', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('deadline_id', sa.Integer(), nullable=True),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('local_day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('sent_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['deadline_id'], ['deadline.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_deadline_id'), ['deadline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_wechat_msg_id'), ['wechat_msg_id'], unique=False)

    op.create_table('liaison_replacement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('holder_openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('requested_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('decided_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('liaison_replacement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_liaison_replacement_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_liaison_replacement_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_liaison_replacement_unit_id'), ['unit_id'], unique=False)

    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('role', sa.Enum('liaison', 'staff', 'coordinator', name='role', native_enum=False, length=20), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('following', sa.Boolean(), nullable=False),
    sa.Column('unreachable_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_message_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.Column('last_interaction_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.Column('reminder_opt_in_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('openid')
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_unit_id'), ['unit_id'], unique=False)

    op.create_table('submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('deadline_id', sa.Integer(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('submitted_at', bot.store.models.UTCDateTime(), nullable=True),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('updated_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['deadline_id'], ['deadline.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_id', 'deadline_id', 'period')
    )
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_deadline_id'), ['deadline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submission_unit_id'), ['unit_id'], unique=False)

    op.create_table('answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('field_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('number', sa.BigInteger(), nullable=True),
    sa.Column('approximate', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_id', 'field_key')
    )
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answer_submission_id'), ['submission_id'], unique=False)

    op.create_table('report_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('media_file_id', sa.Integer(), nullable=True),
    sa.Column('featured', sa.Boolean(), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['media_file_id'], ['media_file.id'], ),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_item_submission_id'), ['submission_id'], unique=False)

    op.create_table('answer_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('answer_id', sa.Integer(), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('changed_at', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['answer_id'], ['answer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('answer_revision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answer_revision_answer_id'), ['answer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('answer_revision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_revision_answer_id'))

    op.drop_table('answer_revision')
    with op.batch_alter_table('report_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_item_submission_id'))

    op.drop_table('report_item')
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_submission_id'))

    op.drop_table('answer')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_unit_id'))
        batch_op.drop_index(batch_op.f('ix_submission_deadline_id'))

    op.drop_table('submission')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_unit_id'))

    op.drop_table('person')
    with op.batch_alter_table('liaison_replacement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_liaison_replacement_unit_id'))
        batch_op.drop_index(batch_op.f('ix_liaison_replacement_status'))
        batch_op.drop_index(batch_op.f('ix_liaison_replacement_openid'))

    op.drop_table('liaison_replacement')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_wechat_msg_id'))
        batch_op.drop_index(batch_op.f('ix_delivery_unit_id'))
        batch_op.drop_index(batch_op.f('ix_delivery_status'))
        batch_op.drop_index(batch_op.f('ix_delivery_openid'))
        batch_op.drop_index(batch_op.f('ix_delivery_deadline_id'))

    op.drop_table('delivery')
    with op.batch_alter_table('deadline_period', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deadline_period_deadline_id'))

    op.drop_table('deadline_period')
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_campaign_id'))

    op.drop_table('unit')
    with op.batch_alter_table('media_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_file_status'))
        batch_op.drop_index(batch_op.f('ix_media_file_openid'))
        batch_op.drop_index(batch_op.f('ix_media_file_next_attempt_at'))

    op.drop_table('media_file')
    with op.batch_alter_table('deadline', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deadline_campaign_id'))

    op.drop_table('deadline')
    op.drop_table('scheduler_lease')
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_message_openid'))

    op.drop_table('inbound_message')
    op.drop_table('conversation')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_slug'))

    op.drop_table('campaign')
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apscheduler_jobs_next_run_time'))

    op.drop_table('apscheduler_jobs')
    op.drop_table('access_token')

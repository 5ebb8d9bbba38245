"""staff belong to a campaign; one-time invitations; announcements and their deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 04:20:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes

from bot.store.models import UTCDateTime


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_ROLE = sa.Enum('liaison', 'staff', 'coordinator', name='role', native_enum=False, length=20)
_STATUS = sa.Enum('queued', 'sending', 'done', name='announcementstatus', native_enum=False, length=20)


def upgrade() -> None:
    op.create_table(
        'invitation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('role', _ROLE, nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
    )
    op.create_index(op.f('ix_invitation_campaign_id'), 'invitation', ['campaign_id'], unique=False)
    op.create_table(
        'announcement',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('sender_openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('image_media_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column('audience', sa.JSON(), nullable=False),
        sa.Column('status', _STATUS, nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_announcement_campaign_id'), 'announcement', ['campaign_id'], unique=False)
    op.create_index(op.f('ix_announcement_sender_openid'), 'announcement', ['sender_openid'], unique=False)
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_person_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_foreign_key('fk_person_campaign_id', 'campaign', ['campaign_id'], ['id'])
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('announcement_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_delivery_announcement_id'), ['announcement_id'], unique=False)
        batch_op.create_foreign_key('fk_delivery_announcement_id', 'announcement', ['announcement_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint('fk_delivery_announcement_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_delivery_announcement_id'))
        batch_op.drop_column('announcement_id')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_constraint('fk_person_campaign_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_person_campaign_id'))
        batch_op.drop_column('campaign_id')
    op.drop_index(op.f('ix_announcement_sender_openid'), table_name='announcement')
    op.drop_index(op.f('ix_announcement_campaign_id'), table_name='announcement')
    op.drop_table('announcement')
    op.drop_index(op.f('ix_invitation_campaign_id'), table_name='invitation')
    op.drop_table('invitation')

"""announcements keep the name of who sent them (a staff member, or the command line)

Revision ID: 0004_notices
Revises: 0003
Create Date: 2026-11-30 04:40:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0004_notices'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('announcement') as batch:
        batch.add_column(sa.Column('sender_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False,
                                   server_default=''))
    # The default only fills the rows already there; the model gives every new row its own value.
    with op.batch_alter_table('announcement') as batch:
        batch.alter_column('sender_name', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('announcement') as batch:
        batch.drop_column('sender_name')

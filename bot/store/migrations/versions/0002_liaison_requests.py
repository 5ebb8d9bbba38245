"""liaison requests carry the requester's answers (replacement and open registration)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 18:20:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('liaison_replacement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='replacement'))
        batch_op.add_column(sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('reminders', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('answers', sa.JSON(), nullable=False, server_default='{}'))
    # The defaults only filled the rows already there; the models give every new row its values.
    with op.batch_alter_table('liaison_replacement', schema=None) as batch_op:
        batch_op.alter_column('kind', server_default=None)
        batch_op.alter_column('name', server_default=None)
        batch_op.alter_column('reminders', server_default=None)
        batch_op.alter_column('answers', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('liaison_replacement', schema=None) as batch_op:
        batch_op.drop_column('answers')
        batch_op.drop_column('reminders')
        batch_op.drop_column('name')
        batch_op.drop_column('kind')

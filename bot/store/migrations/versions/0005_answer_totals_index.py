"""an index on answer that holds what 合计 sums, so that it reads no table row and sorts nothing

Revision ID: 0005
Revises: 0004_notices
Create Date: 2026-11-30 05:50:00
"""

from alembic import op


revision = '0005'
down_revision = '0004_notices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_answer_totals', 'answer', ['field_key', 'submission_id', 'number', 'approximate'])


def downgrade() -> None:
    op.drop_index('ix_answer_totals', table_name='answer')

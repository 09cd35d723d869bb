"""inquiries: an index for the expiry sweep

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:00:00+00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The list filters (status, execution_id, root_execution_id) already lead indexes; the
    # periodic expiry asks for pending inquiries past expires_at, over the pending ones only.
    op.create_index('ix_inquiries_pending_expires_at', 'inquiries', ['expires_at'],
                    postgresql_where=sa.text("status = 'pending' AND expires_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_inquiries_pending_expires_at', table_name='inquiries')

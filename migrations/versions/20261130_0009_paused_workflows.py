"""executions: pausing workflows count as worker-owned for the heartbeat index; the item index of a with-items task

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:30:00+00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('executions', sa.Column('item_index', sa.Integer(), nullable=True))
    op.drop_index('ix_executions_active_heartbeat', table_name='executions')
    op.create_index('ix_executions_active_heartbeat', 'executions', ['heartbeat_at'],
                    postgresql_where=sa.text("status IN ('canceling', 'pausing', 'running') AND waiting_on IS NULL"))


def downgrade() -> None:
    op.drop_column('executions', 'item_index')
    op.drop_index('ix_executions_active_heartbeat', table_name='executions')
    op.create_index('ix_executions_active_heartbeat', 'executions', ['heartbeat_at'],
                    postgresql_where=sa.text("status IN ('running', 'canceling') AND waiting_on IS NULL"))

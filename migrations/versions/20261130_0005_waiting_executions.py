"""waiting executions: what an execution waits on, and the wakes that resume it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:40:00+00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('executions', sa.Column('waiting_on', sa.String(length=32), nullable=True))
    op.add_column('executions', sa.Column('wakeups', sa.Integer(), server_default='0', nullable=False))
    op.add_column('executions', sa.Column('waited_wakeups', sa.Integer(), server_default='0', nullable=False))
    op.add_column('executions', sa.Column('woken_at', sa.DateTime(timezone=True), nullable=True))
    # The sweeper's two questions: which active runs stopped beating (worker-owned only),
    # and which waiting ones were woken but not resumed. Both partial, so they stay small.
    op.create_index('ix_executions_active_heartbeat', 'executions', ['heartbeat_at'],
                    postgresql_where=sa.text("status IN ('running', 'canceling') AND waiting_on IS NULL"))
    op.create_index('ix_executions_waiting', 'executions', ['woken_at'],
                    postgresql_where=sa.text('waiting_on IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_executions_waiting', table_name='executions')
    op.drop_index('ix_executions_active_heartbeat', table_name='executions')
    op.drop_column('executions', 'woken_at')
    op.drop_column('executions', 'waited_wakeups')
    op.drop_column('executions', 'wakeups')
    op.drop_column('executions', 'waiting_on')

"""keys: an index for the expired-key purge

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:30:00+00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_keys_expires_at', 'keys', ['expires_at'],
                    postgresql_where=sa.text('expires_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_keys_expires_at', table_name='keys')

"""webhook request log

Delivery ids (GitHub's X-GitHub-Delivery) are not stored here: the replay check keeps them in
Redis with a one-day TTL, so they expire on their own and the check is one atomic SET NX.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:30:00+00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_requests',
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.Column('packs', postgresql.ARRAY(sa.String(length=128)), nullable=False),
    sa.Column('source_address', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('event_id', sa.BigInteger(), nullable=True),
    sa.Column('delivery_id', sa.String(length=128), nullable=True),
    sa.Column('principal', sa.String(length=255), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_webhook_requests_event_id_events'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_requests'))
    )
    op.create_index(op.f('ix_webhook_requests_created_at'), 'webhook_requests', ['created_at'], unique=False)
    op.create_index('ix_webhook_requests_outcome_created_at', 'webhook_requests', ['outcome', 'created_at'], unique=False)
    op.create_index('ix_webhook_requests_packs', 'webhook_requests', ['packs'], unique=False, postgresql_using='gin')
    op.create_index('ix_webhook_requests_url_created_at', 'webhook_requests', ['url', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_requests_url_created_at', table_name='webhook_requests')
    op.drop_index('ix_webhook_requests_packs', table_name='webhook_requests', postgresql_using='gin')
    op.drop_index('ix_webhook_requests_outcome_created_at', table_name='webhook_requests')
    op.drop_index(op.f('ix_webhook_requests_created_at'), table_name='webhook_requests')
    op.drop_table('webhook_requests')

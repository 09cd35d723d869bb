"""run_tokens: tokens python actions and sensor polls reach the keys API with (hashes only)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:00:00+00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_tokens',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('execution_id', sa.BigInteger(), nullable=True),
        sa.Column('sensor_ref', sa.String(length=257), nullable=True),
        sa.Column('pack', sa.String(length=128), nullable=False),
        sa.Column('user', sa.String(length=255), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('(execution_id IS NULL) <> (sensor_ref IS NULL)', name=op.f('ck_run_tokens_one_run')),
        sa.ForeignKeyConstraint(['execution_id'], ['executions.id'],
                                name=op.f('fk_run_tokens_execution_id_executions'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_run_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_run_tokens_token_hash')),
    )
    op.create_index(op.f('ix_run_tokens_execution_id'), 'run_tokens', ['execution_id'])
    op.create_index(op.f('ix_run_tokens_expires_at'), 'run_tokens', ['expires_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_run_tokens_expires_at'), table_name='run_tokens')
    op.drop_index(op.f('ix_run_tokens_execution_id'), table_name='run_tokens')
    op.drop_table('run_tokens')

"""timer and sensor state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:30:00+00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'timer_states',
        sa.Column('timer_id', sa.String(length=64), nullable=False),
        sa.Column('last_fired_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('timer_id', name=op.f('pk_timer_states')),
    )
    op.create_table(
        'sensor_values',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('sensor_ref', sa.String(length=257), nullable=False),
        sa.Column('name', sa.String(length=512), nullable=False),
        sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sensor_values')),
        sa.UniqueConstraint('sensor_ref', 'name', name=op.f('uq_sensor_values_sensor_ref_name')),
    )
    op.create_index(op.f('ix_sensor_values_sensor_ref'), 'sensor_values', ['sensor_ref'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sensor_values_sensor_ref'), table_name='sensor_values')
    op.drop_table('sensor_values')
    op.drop_table('timer_states')

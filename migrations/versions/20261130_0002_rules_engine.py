"""events claim time, one enforcement per event and rule, rule authorship

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:30:00+00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_rules = sa.table('rules', sa.column('id', sa.BigInteger()), sa.column('criteria', postgresql.JSONB()))


def _migrate_search(criteria):
    # Before 0002 'search' was a regular expression; it is StackStorm's list operator now.
    if not isinstance(criteria, dict):
        return criteria
    return {key: {**criterion, 'type': 'regex'}
            if isinstance(criterion, dict) and str(criterion.get('type')).lower() == 'search'
            and isinstance(criterion.get('pattern'), str) else criterion
            for key, criterion in criteria.items()}


def upgrade() -> None:
    op.add_column('events', sa.Column('pack_name', sa.String(length=128), server_default='', nullable=False))
    op.add_column('events', sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE events SET pack_name = split_part(trigger_ref, '.', 1)")
    op.create_index('ix_events_source_created_at', 'events', ['source', 'created_at'], unique=False)
    op.create_index('ix_events_pack_name_created_at', 'events', ['pack_name', 'created_at'], unique=False)

    op.add_column('enforcements', sa.Column('pack_name', sa.String(length=128), server_default='', nullable=False))
    op.execute("UPDATE enforcements SET pack_name = split_part(rule_ref, '.', 1)")
    op.create_index('ix_enforcements_status_created_at', 'enforcements', ['status', 'created_at'], unique=False)
    op.create_index('ix_enforcements_pack_name_created_at', 'enforcements', ['pack_name', 'created_at'], unique=False)
    op.create_unique_constraint(op.f('uq_enforcements_event_id_rule_id'), 'enforcements', ['event_id', 'rule_id'])

    op.add_column('rules', sa.Column('created_by', sa.String(length=255), nullable=True))
    op.add_column('rules', sa.Column('updated_by', sa.String(length=255), nullable=True))

    conn = op.get_bind()
    for rule_id, criteria in conn.execute(sa.select(_rules.c.id, _rules.c.criteria)).all():
        migrated = _migrate_search(criteria)
        if migrated != criteria:
            conn.execute(_rules.update().where(_rules.c.id == rule_id).values(criteria=migrated))


def downgrade() -> None:
    op.drop_column('rules', 'updated_by')
    op.drop_column('rules', 'created_by')
    op.drop_constraint(op.f('uq_enforcements_event_id_rule_id'), 'enforcements', type_='unique')
    op.drop_index('ix_enforcements_pack_name_created_at', table_name='enforcements')
    op.drop_index('ix_enforcements_status_created_at', table_name='enforcements')
    op.drop_column('enforcements', 'pack_name')
    op.drop_index('ix_events_pack_name_created_at', table_name='events')
    op.drop_index('ix_events_source_created_at', table_name='events')
    op.drop_column('events', 'claimed_at')
    op.drop_column('events', 'pack_name')

"""Indexes for the queries pages and the API make: a day's cases, a surgeon's history, a day's blocks.

The audit log by hospital is served by the governance table's own unique (hospital_id, seq) constraint
(gov_audit_log, engine/governance/audit_store.py), which this migration leaves alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 08:21:14.143757
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_blocks_hospital_date', 'blocks', ['hospital_id', 'date'], unique=False)
    op.create_index('ix_cases_hospital_date', 'cases', ['hospital_id', 'surgery_date'], unique=False)
    op.create_index('ix_cases_hospital_surgeon', 'cases', ['hospital_id', 'surgeon_id', 'surgery_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_hospital_surgeon', table_name='cases')
    op.drop_index('ix_cases_hospital_date', table_name='cases')
    op.drop_index('ix_blocks_hospital_date', table_name='blocks')

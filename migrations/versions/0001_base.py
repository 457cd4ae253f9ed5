"""Base: the store's schema as it was before migrations (engine/store.py at issue 21: hospitals,
cases, rooms, surgeons, blocks, staffing, quarantine). A store created by `Store()` before this
revision is `alembic stamp 0001`, then `alembic upgrade head`.

Revision ID: 0001
Revises: 
Create Date: 2026-12-02 08:20:29.932247
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hospitals',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('settings_json', sa.Text(), nullable=False),
    sa.Column('quality_json', sa.Text(), nullable=False),
    sa.Column('layout_json', sa.Text(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('archived_of', sa.String(length=200), nullable=True),
    sa.Column('replaced_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('hospital_id')
    )
    op.create_index(op.f('ix_hospitals_archived_of'), 'hospitals', ['archived_of'], unique=False)
    op.create_table('blocks',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=True),
    sa.Column('room_id', sa.Text(), nullable=True),
    sa.Column('service_line', sa.Text(), nullable=True),
    sa.Column('surgeon_id', sa.Text(), nullable=True),
    sa.Column('start_time', sa.String(length=5), nullable=True),
    sa.Column('end_time', sa.String(length=5), nullable=True),
    sa.Column('extra_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.hospital_id'], )
    )
    op.create_index(op.f('ix_blocks_hospital_id'), 'blocks', ['hospital_id'], unique=False)
    op.create_table('cases',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Text(), nullable=True),
    sa.Column('surgery_date', sa.Date(), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('service_line', sa.Text(), nullable=True),
    sa.Column('procedure_code', sa.Text(), nullable=True),
    sa.Column('procedure_name', sa.Text(), nullable=True),
    sa.Column('surgeon_id', sa.Text(), nullable=True),
    sa.Column('room_id', sa.Text(), nullable=True),
    sa.Column('booked_minutes', sa.Float(), nullable=True),
    sa.Column('booked_at', sa.DateTime(), nullable=True),
    sa.Column('scheduled_start', sa.DateTime(), nullable=True),
    sa.Column('wheels_in', sa.DateTime(), nullable=True),
    sa.Column('wheels_out', sa.DateTime(), nullable=True),
    sa.Column('procedure_start', sa.DateTime(), nullable=True),
    sa.Column('procedure_end', sa.DateTime(), nullable=True),
    sa.Column('urgency', sa.Text(), nullable=True),
    sa.Column('cancellation_reason', sa.Text(), nullable=True),
    sa.Column('required_equipment', sa.Text(), nullable=True),
    sa.Column('patient_age', sa.Float(), nullable=True),
    sa.Column('patient_sex', sa.Text(), nullable=True),
    sa.Column('asa_class', sa.Float(), nullable=True),
    sa.Column('bmi', sa.Float(), nullable=True),
    sa.Column('anesthesia_type', sa.Text(), nullable=True),
    sa.Column('admission_type', sa.Text(), nullable=True),
    sa.Column('site', sa.Text(), nullable=True),
    sa.Column('extra_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.hospital_id'], )
    )
    op.create_index(op.f('ix_cases_hospital_id'), 'cases', ['hospital_id'], unique=False)
    op.create_table('quarantine',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('file', sa.Text(), nullable=True),
    sa.Column('row', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Text(), nullable=True),
    sa.Column('column', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.hospital_id'], )
    )
    op.create_index(op.f('ix_quarantine_hospital_id'), 'quarantine', ['hospital_id'], unique=False)
    op.create_table('rooms',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Text(), nullable=True),
    sa.Column('site', sa.Text(), nullable=True),
    sa.Column('capabilities', sa.Text(), nullable=True),
    sa.Column('open_time', sa.String(length=5), nullable=True),
    sa.Column('close_time', sa.String(length=5), nullable=True),
    sa.Column('extra_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.hospital_id'], )
    )
    op.create_index(op.f('ix_rooms_hospital_id'), 'rooms', ['hospital_id'], unique=False)
    op.create_table('staffing',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=True),
    sa.Column('staffed_rooms', sa.Float(), nullable=True),
    sa.Column('anesthesia_teams', sa.Float(), nullable=True),
    sa.Column('pacu_beds', sa.Float(), nullable=True),
    sa.Column('extra_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.hospital_id'], )
    )
    op.create_index(op.f('ix_staffing_hospital_id'), 'staffing', ['hospital_id'], unique=False)
    op.create_table('surgeons',
    sa.Column('hospital_id', sa.String(length=200), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('surgeon_id', sa.Text(), nullable=True),
    sa.Column('service_line', sa.Text(), nullable=True),
    sa.Column('extra_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.hospital_id'], )
    )
    op.create_index(op.f('ix_surgeons_hospital_id'), 'surgeons', ['hospital_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_surgeons_hospital_id'), table_name='surgeons')
    op.drop_table('surgeons')
    op.drop_index(op.f('ix_staffing_hospital_id'), table_name='staffing')
    op.drop_table('staffing')
    op.drop_index(op.f('ix_rooms_hospital_id'), table_name='rooms')
    op.drop_table('rooms')
    op.drop_index(op.f('ix_quarantine_hospital_id'), table_name='quarantine')
    op.drop_table('quarantine')
    op.drop_index(op.f('ix_cases_hospital_id'), table_name='cases')
    op.drop_table('cases')
    op.drop_index(op.f('ix_blocks_hospital_id'), table_name='blocks')
    op.drop_table('blocks')
    op.drop_index(op.f('ix_hospitals_archived_of'), table_name='hospitals')
    op.drop_table('hospitals')

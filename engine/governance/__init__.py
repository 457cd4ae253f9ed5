"""Governance: publish workflow, overrides, hash-chained audit log, rules catalog, safety gates, rollback, roles.

See engine/governance/GOVERNANCE.md for the design and the roles/permissions matrix.
"""
from engine.governance.actions import (
    ReplaceNotConfirmed,
    fairness_allowed,
    guarded_import,
    patient_group_audit_for,
    replan_day,
    replan_exceptions,
    replan_plan_json,
    retrain,
)
from engine.governance.audit import (
    AuditEntry,
    VerifyResult,
    append,
    chain_heads,
    export_jsonl,
    read_log,
    verify_chain,
    verify_jsonl,
)
from engine.governance.auth import (
    Authenticator,
    LocalAuthenticator,
    api_tokens,
    authenticate,
    demo_signin_active,
    demo_signin_enabled,
    ensure_dev_users,
    get_authenticator,
    hash_password,
    hash_token,
    set_authenticator,
    user_from_claims,
    user_from_token,
    verify_password,
)
from engine.governance.canonical import input_data_hash
from engine.governance.catalog import Catalog, Justification, Rule, load_catalog, plan_params_from_catalog
from engine.governance.errors import ConflictError, HardRuleViolation, OverrideError, PublicationWithheld, WorkflowError
from engine.governance.fallback import booked_forecasts, rules_schedule
from engine.governance.gates import GateParams, GateResult, evaluate_gates, withheld
from engine.governance.overrides import Override, apply_overrides, override_rates
from engine.governance.roles import (
    Roles,
    User,
    can,
    is_clinical,
    load_roles,
    mask_for_role,
    mask_reasons_for_role,
    mask_text_for_role,
    require,
)
from engine.governance.workflow import Governance, ScheduleVersion

__all__ = [
    "AuditEntry", "Authenticator", "Catalog", "ConflictError", "GateParams", "GateResult", "Governance", "Justification",
    "LocalAuthenticator", "Override", "OverrideError", "PublicationWithheld", "Roles", "Rule", "ScheduleVersion", "User",
    "VerifyResult", "WorkflowError", "append", "apply_overrides", "authenticate", "booked_forecasts", "can", "chain_heads",
    "ensure_dev_users", "evaluate_gates", "export_jsonl", "get_authenticator", "hash_password", "input_data_hash",
    "load_catalog", "load_roles", "is_clinical", "mask_for_role", "mask_reasons_for_role", "mask_text_for_role", "override_rates", "plan_params_from_catalog", "read_log", "require",
    "rules_schedule", "set_authenticator", "user_from_claims", "verify_chain", "verify_jsonl", "verify_password",
    "withheld", "HardRuleViolation", "ReplaceNotConfirmed", "api_tokens", "demo_signin_active", "demo_signin_enabled",
    "fairness_allowed", "guarded_import", "hash_token", "patient_group_audit_for", "replan_day", "replan_exceptions",
    "replan_plan_json", "retrain", "user_from_token",
]

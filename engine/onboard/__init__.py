"""Onboarding a hospital from its own exports: a suggested mapping, and blocks, staffing and PACU
beds inferred from history when the export has none."""
from engine.onboard.suggest import Suggestion, suggest_mapping

__all__ = ["Suggestion", "suggest_mapping"]

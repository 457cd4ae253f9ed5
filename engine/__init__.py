"""Predictive OR allocation engine: pure Python, never imports streamlit.

The public surface is re-exported here; modules with a leading underscore are private.
"""
from engine.errors import InputError, Problem
from engine.hospital import Hospital, LoadedHospital, QualityReport, ValidationParams, load_cases, load_hospital

__all__ = [
    "Hospital",
    "InputError",
    "LoadedHospital",
    "Problem",
    "QualityReport",
    "ValidationParams",
    "load_cases",
    "load_hospital",
]

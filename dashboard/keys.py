"""Every ``st.session_state`` key the dashboard uses, defined once.

Pages and dashboard modules index session state only with these constants (tests/dashboard/test_keys.py
checks it). The string values are what tests and the browser tests refer to: do not change them.
"""

# Shell (dashboard/app.py, dashboard/state.py)
HOSPITAL_KEY = "hospital_id"  # the hospital every page shows
USER_KEY = "user"  # the user signed in with a password (kept across reruns)
ACTIVE_USER_KEY = "active_user"  # who the pages act for: the signed-in user or the demo sign-in's role
DEMO_ROLE_KEY = "demo_role"  # the demo sign-in's role selectbox

# Decision pages (Schedule, Simulation)
ALTERNATIVES_SHOWN_KEY = "alternatives_shown"  # the plan alternatives were asked for
REPLAN_RESULT_KEY = "replan_result"  # the last re-plan after a day-of event
FRONTIER_SHOWN_KEY = "frontier_shown"  # the frontier was asked for once: shown again on every rerun
OVERVIEW_TAB_KEY = "ov_tab"  # the Overview page's open tab (lazy tabs: only the open one computes)
SIM_SCENARIO_KEY = "sim_scenario"  # the Simulation page's scenario selectbox
SIM_KNOB_PREFIX = "sim_knob_"  # prefix of one slider key per simulation knob (see knob_key)

# Data page
IMPORT_DONE_KEY = "import_done"  # id of a hospital just imported: switched to on the next rerun

# Fairness page
FAIR_TERM_SHOWN_KEY = "fair_term_shown"  # the threshold whose fairness-term explanation was shown

# What-if page and state
WHATIF_SESSION_KEY = "_whatif_session"  # the What-if engine session held across reruns
WI_SAVED_KEY = "wi_saved"  # saved what-if runs by name
WI_COMPARE_KEY = "wi_compare"  # names of saved runs chosen for comparison (multiselect)

# Governance page and canary state
GOV_FLASH_KEY = "gov_flash"  # messages shown once after a governance action
GOV_GATE_RESULTS_KEY = "gov_gate_results"  # (version id, gate results) last checked
DRILL_KEY = "gov_last_drill"  # the last failure drill's report
REPORT_KEY = "gov_canary_report"  # the last canary report

# Rollout page and state
REPLAY_KEY = "rollout_replay"  # the last replay run
SHADOW_REPORT_KEY = "rollout_shadow_report"  # the last shadow-mode report
MONITOR_KEY = "rollout_monitor"  # the last live-monitor reading


def knob_key(name: str) -> str:
    """Session key of one simulation knob's slider."""
    return f"{SIM_KNOB_PREFIX}{name}"

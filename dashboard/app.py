"""Streamlit entry: shared page config, hospital picker, navigation. Run: streamlit run dashboard/app.py"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repo root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard import state  # noqa: E402

st.set_page_config(page_title="OR allocation", page_icon=":material/local_hospital:", layout="wide")

boot = state.startup()
if boot.error:
    st.error(boot.error)

listed = state.hospitals()
ids = listed["hospital_id"].tolist()
if state.HOSPITAL_KEY not in st.session_state or st.session_state[state.HOSPITAL_KEY] not in ids:
    st.session_state[state.HOSPITAL_KEY] = boot.hospital_id if boot.hospital_id in ids else (ids[0] if ids else None)

with st.sidebar:
    st.markdown("### Predictive OR allocation")
    if ids:
        names = dict(zip(listed["hospital_id"], listed["name"]))
        st.selectbox(
            "Hospital",
            ids,
            key=state.HOSPITAL_KEY,
            format_func=lambda h: f"{names.get(h, h)} ({h})",
        )
    else:
        st.info("No hospital in the store yet. Import one on the Data page, or run `make run` for the demo hospital.")
    st.divider()
    from engine.governance import User, authenticate, load_roles

    roles = load_roles()
    user = state.current_user()
    demo = state.demo_sign_in()
    if user is None and demo:
        role = st.selectbox("Role (demo sign-in)", list(roles.roles), key=state.DEMO_ROLE_KEY,
                            format_func=lambda r: roles.roles[r].label)
        st.warning(state.DEMO_SIGNIN_WARNING, icon=":material/warning:")
        user = User(f"demo-{role}", role)
    elif user is None and not state.users_configured():
        st.error("No users are configured and demo sign-in is off (OR_DEMO_SIGNIN=0): nobody can sign in. "
                 "Configure hashed users (OR_USERS_FILE): see engine/governance/GOVERNANCE.md.")
    elif user is None:
        with st.form("sign_in"):
            name = st.text_input("User", key="sign_in_user")
            password = st.text_input("Password", type="password", key="sign_in_password")
            if st.form_submit_button("Sign in"):
                found = authenticate(name, password)
                if found is None:
                    st.error("Unknown user or wrong password.")
                else:
                    st.session_state[state.USER_KEY] = found
                    state.governance().record_sign_in(found)
                    st.rerun()
    else:
        st.markdown(f"Signed in as **{user.name}** ({roles.roles[user.role].label})")
        if st.button("Sign out", key="sign_out"):
            del st.session_state[state.USER_KEY]
            st.rerun()
    st.session_state[state.ACTIVE_USER_KEY] = user

pages = [
    # The default page is served at "/" whatever its url_path, so /data needs its own (hidden) entry.
    st.Page("../pages/data.py", title="Data", icon=":material/database:", default=True, url_path="home"),
    st.Page("../pages/data.py", title="Data", icon=":material/database:", url_path="data", visibility="hidden"),
    st.Page("../pages/forecasts.py", title="Forecasts", icon=":material/query_stats:", url_path="forecasts"),
    st.Page("../pages/schedule.py", title="Schedule", icon=":material/calendar_month:", url_path="schedule"),
    st.Page("../pages/simulation.py", title="Simulation", icon=":material/casino:", url_path="simulation"),
    st.Page("../pages/whatif.py", title="What-if", icon=":material/tune:", url_path="whatif"),
    st.Page("../pages/overview.py", title="Leadership overview", icon=":material/insights:", url_path="overview"),
    st.Page("../pages/fairness.py", title="Fairness review", icon=":material/balance:", url_path="fairness"),
    st.Page("../pages/governance.py", title="Governance", icon=":material/verified_user:", url_path="governance"),
    st.Page("../pages/rollout.py", title="Pilot & rollout", icon=":material/rocket_launch:", url_path="rollout"),
]
st.navigation(pages).run()

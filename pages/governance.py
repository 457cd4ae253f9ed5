"""Governance: propose, approve, gate and publish schedules; overrides with justifications;
rollback; override rates; the hash-chained audit log; the rules catalog; the rollout board (canary with
its one-click stop, rollback drills, incidents; dashboard/canary_state.py). Roles are enforced in
the engine: a button the role may not use says so instead of acting."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import canary_state as cs
from dashboard import charts, keys, state
from dashboard import governance_state as gs
from engine.errors import InputError

st.title("Governance")

current = state.current_hospital()
user = state.active_user()
if current is None or user is None:
    st.info("Choose a hospital (Data page) and sign in (sidebar).")
    st.stop()
hid, loaded = current
h = loaded.hospital
gov = state.governance()
catalog = gs.catalog()
mv = state.current_model(hid)


FLASH = gs.FLASH
act = gs.act  # engine refusals become plain messages kept across the rerun

for kind, text in st.session_state.pop(FLASH, []):
    {"error": st.error, "warning": st.warning, "success": st.success}[kind](text)

versions_tab, override_tab, rates_tab, audit_tab, rules_tab, rollout_tab = st.tabs(
    ["Versions and publication", "Overrides", "Override rates", "Audit log", "Rules catalog",
     "Rollout: canary, drills, incidents"])

with versions_tab:
    hist = gov.history(hid)
    first_day = state.first_booked_day(h)
    c = st.columns(3)
    propose_refusal = (state.why_not("propose")
                       or (None if mv is not None else "No forecasting model yet: train one on the Forecasts page.")
                       or (None if state.has_booked_cases(h) else "This hospital has no booked cases to propose a plan for."))
    if c[0].button("Propose the optimizer's plan for the first day", key="gov_propose",
                   disabled=propose_refusal is not None, help=propose_refusal):
        result, canary_note = cs.proposal(hid, h, mv, first_day, state.default_plan_params())  # under a canary: the canary's plan
        act("Proposal", gov.propose, hid, result, user, hospital=h, model=mv, rules_version=catalog.rules_version,
            note=canary_note)
        st.rerun()
    if mv is None:
        c[0].caption("Train a forecasting model first (Forecasts page).")
    hist = gov.history(hid)
    if not len(hist):
        st.info("No schedule version yet: propose one.")
    else:
        st.dataframe(charts.words(hist[["version_id", "status", "horizon_start", "horizon_end", "source", "created_by", "approved_by",
                           "published_by", "status_note", "model_version", "n_cases"]]),
                     hide_index=True, width="stretch", key="gov_history")
        vid = st.selectbox("Version", hist["version_id"].tolist()[::-1], key="gov_version")
        ver = gov.version(int(vid))
        st.markdown(f"Version **{vid}**: {ver.status}, {ver.n_cases} cases, created by {ver.created_by} ({ver.created_role}); "
                    f"solver {ver.plan.get('solver', 'n/a')}, status {ver.plan.get('status', 'n/a')}"
                    + (f", fallback: {ver.plan.get('fallback_reason')}" if ver.plan.get("fallback_used") else ""))
        b = st.columns(4)
        note = st.text_input("Note (required to reject)", key="gov_note")

        def why_not(action: str, statuses: tuple[str, ...]) -> str | None:
            """Why this user cannot do ``action`` on this version now (the engine enforces it too)."""
            if not gs.can(user, action):
                return f"Your role ({user.role}) may not do this."
            if ver.status not in statuses or (action == "approve" and ver.successor_id is not None):
                return f"Version {vid} is {ver.status}" + (" and was overridden by a newer version" if ver.successor_id else "") + "."
            return None

        blocked = {"approve": why_not("approve", ("proposed",)), "reject": why_not("reject", ("proposed", "approved")),
                   "run_gates": why_not("run_gates", ("proposed", "approved")), "publish": why_not("publish", ("approved",))}
        if b[0].button("Approve", key="gov_approve", disabled=bool(blocked["approve"]), help=blocked["approve"]):
            act("Approval", gov.approve, int(vid), user, note)
            st.rerun()
        if b[1].button("Reject", key="gov_reject", disabled=bool(blocked["reject"]), help=blocked["reject"]):
            act("Rejection", gov.reject, int(vid), user, note)
            st.rerun()
        if b[2].button("Run the safety gates", key="gov_gates", disabled=bool(blocked["run_gates"]), help=blocked["run_gates"]):
            gates = act("Gates", gov.check_gates, int(vid), user, h, model=mv, quality=loaded.report, say_done=False)
            if gates:
                st.session_state[keys.GOV_GATE_RESULTS_KEY] = (int(vid), gates)
            st.rerun()
        if b[3].button("Publish", key="gov_publish", type="primary", disabled=bool(blocked["publish"]), help=blocked["publish"]):
            # The engine checks the hard rules again on the schedule itself (hospital=h), whatever the gates said.
            act("Publication", gov.publish, int(vid), user, hospital=h)
            st.rerun()
        shown = st.session_state.get(keys.GOV_GATE_RESULTS_KEY)
        if shown and shown[0] == int(vid):
            st.markdown(f"**Safety gates, as last run on version {vid}**")
            for g in shown[1]:
                (st.success if g.passed else st.error if g.blocking else st.warning)(
                    f"**{g.gate}**: {g.message}" + (f" Next: {g.inspect_next}" if not g.passed and g.inspect_next else "")
                    + (f"  \n*Checked:* {g.checked}" if getattr(g, "checked", "") else ""))
        st.dataframe(charts.words(charts.display_table(state.mask_frame(ver.schedule, user.role))), hide_index=True, width="stretch", key="gov_version_schedule")
        st.divider()
        st.markdown("**Rollback**: return the schedule in force to the last approved version (published at once, its "
                    "approval carried) or to the rules-based block schedule (a new *proposed* version: leadership approves "
                    "it, the gates run, then it is published). The version rolled back is kept and marked. An emergency "
                    "publishes the rules schedule at once, audited as an emergency; the hard rules still apply.")
        r = st.columns(3)
        day = r[0].date_input("Date", value=pd.Timestamp(ver.horizon_start).date(), key="gov_rollback_date")
        target = r[1].selectbox("Return to", ["last_approved", "rules"], key="gov_rollback_to",
                                format_func={"last_approved": "last approved schedule", "rules": "rules-based block schedule"}.get)
        reason = r[2].text_input("Reason", key="gov_rollback_reason")
        emergency = st.checkbox("Emergency: publish the rules schedule now, without approval (audited as an emergency; "
                                "the reason must say why)", key="gov_rollback_emergency", disabled=target != "rules")
        rollback_refusal = state.why_not("rollback")
        if st.button("Roll back", key="gov_rollback", disabled=rollback_refusal is not None, help=rollback_refusal):
            rules = gs.rules_schedule(h, day, 1) if target == "rules" else None
            out = act("Rollback", gov.rollback, hid, pd.Timestamp(day), user, to=target, reason=reason, rules=rules,
                      hospital=h, emergency=bool(emergency and target == "rules"), say_done=False)
            if out is not None:
                then = (" and needs approval, gates and publication before it is in force." if out.status == "proposed"
                        else " (emergency, audited)." if emergency else ".")
                st.session_state[FLASH].append(("success", f"Rollback done: version {out.version_id} is {out.status}{then}"))
            st.rerun()

with override_tab:
    hist = gov.history(hid)
    open_versions = hist[hist["status"].isin(["proposed", "approved", "published"])]
    if not len(open_versions):
        st.info("Propose a schedule first.")
    else:
        vid = st.selectbox("Override on version", open_versions["version_id"].tolist()[::-1], key="gov_override_version")
        ver = gov.version(int(vid))
        cases = ver.schedule["case_id"].tolist()
        with st.form("override_form"):
            o = st.columns(3)
            cid = o[0].selectbox("Case", cases, key="ov_case")
            action = o[1].selectbox("Action", ["move", "defer", "lock"], key="ov_action")
            code = o[2].selectbox("Justification", list(catalog.justifications), key="ov_code",
                                  format_func=lambda k: catalog.justifications[k].label)
            p = st.columns(3)
            room = p[0].selectbox("Room (move)", [""] + sorted(h.rooms["room_id"]), key="ov_room")
            start = p[1].text_input("Start HH:MM (move)", key="ov_start")
            text = p[2].text_input("Text (required for 'other')", key="ov_text")
            keep_broken = st.checkbox("If it breaks a hard rule, keep it anyway as a version that cannot be published "
                                      "until it is fixed", key="ov_keep_infeasible")
            override_refusal = state.why_not("override")
            submitted = st.form_submit_button("Record the override", disabled=override_refusal is not None,
                                              help=override_refusal)
        if submitted:
            ov = None
            try:
                ov = gs.override(cid, action, code, text=text, room_id=room or None, start=start or None)
            except (ValueError, InputError) as exc:
                st.session_state.setdefault(FLASH, []).append(("error", f"Override refused: {exc}"))
            if ov is not None:
                new = act("Override", gov.override, int(vid), ov, user, hospital=h, allow_violations=bool(keep_broken),
                          say_done=False)
                if new is not None:
                    gate = gov.hard_rules_gate(new.version_id, hospital=h)
                    if gate.passed:
                        st.session_state[FLASH].append(("success", f"New proposed version {new.version_id}; "
                                                                   "it needs approval before publication."))
                    else:
                        st.session_state[FLASH].append(("warning", f"New proposed version {new.version_id} breaks the hard "
                                                                   f"rules and cannot be published until fixed: {gate.message}"))
            st.rerun()
        ovs = gov.overrides(hid, user) if gs.can(user, "view_schedule") else pd.DataFrame()
        if len(ovs):
            st.dataframe(charts.words(state.mask_frame(ovs, user.role)), hide_index=True, width="stretch", key="gov_overrides")

with rates_tab:
    if gs.can(user, "view_override_rates"):
        for by in ("service_line", "code"):
            rates = gov.override_rates(hid, by=by, actor=user)
            st.markdown(f"**By {by.replace('_', ' ')}**")
            st.dataframe(charts.words(rates), hide_index=True, width="stretch", key=f"gov_rates_{by}")
    else:
        st.info("Override rates are not available to your role.")

with audit_tab:
    if gs.can(user, "view_audit"):
        log_df = gov.audit_log(hid, user)
        st.dataframe(charts.words(log_df), hide_index=True, width="stretch", key="gov_audit")
    else:
        st.info("The audit log is read by leadership and governance.")
    if st.button("Verify the audit chain", key="gov_verify"):
        res = act("Verification", gov.verify, user, hid, say_done=False)
        if res is not None:
            st.session_state[FLASH].append(("success" if res.ok else "error", res.message))
        st.rerun()
    if gs.can(user, "export_audit"):
        st.download_button("Export the audit log (JSON lines)", gs.audit_export(hid, user), file_name=f"audit-{hid}.jsonl",
                           key="gov_export")

with rules_tab:
    rows = [{"id": r.id, "name": r.name, "mode": r.mode, "severity": r.severity, "owner": r.owner,
             "override_role": r.override_role, "description": r.description} for r in catalog.rules.values()]
    st.markdown(f"Rules version `{catalog.rules_version}`. The optimizer reads the enforced rules.")
    st.dataframe(charts.words(pd.DataFrame(rows)), hide_index=True, width="stretch", key="gov_rules")

with rollout_tab:
    st.page_link("../pages/rollout.py", label="Shadow mode, planned-vs-actual monitoring and the retrospective replay: "
                                               "Pilot & rollout page", icon=":material/rocket_launch:")
    st.subheader("Canary")
    active, newest, canaries_df = cs.canary_status(hid)
    if active is None:
        st.info("No canary is active: every case keeps the rules-based block schedule.")
        kind = st.selectbox("Canary by", ["rooms", "service_lines", "sites"], key="canary_kind",
                            format_func=lambda x: x.replace("_", " "))
        with st.form("canary_form"):
            k = st.columns(2)
            values = k[0].multiselect("Which (the rest is the control group)", cs.scope_choices(h, kind), key="canary_values")
            go_live = k[1].date_input("Go-live", value=h.as_of().date(), key="canary_go_live")
            note = st.text_input("Note", key="canary_note")
            start_refusal = state.why_not("publish")
            started = st.form_submit_button("Start the canary", disabled=start_refusal is not None, help=start_refusal)
        if started:
            c = act("Canary start", cs.start_canary, hid, h, kind, values, go_live, note, say_done=False)
            if c is not None:
                st.session_state[FLASH].append(("success", f"Canary {c.canary_id} active from {c.go_live:%Y-%m-%d} on "
                                                           f"{c.scope.label()} (audit entry {c.start_entry_id})."))
            st.rerun()
    else:
        st.success(f"Canary {active.canary_id} is **active** since {active.go_live:%Y-%m-%d} on {active.scope.label()}, "
                   f"started by {active.started_by}; every other case keeps the rules-based block schedule.")
        stop_reason = st.text_input("Reason to stop (required; audited)", key="canary_stop_reason")
        stop_refusal = state.why_not("rollback")
        if st.button("Stop the canary: back to the rules schedule", key="canary_stop", type="primary",
                     disabled=stop_refusal is not None, help=stop_refusal):
            c = act("Canary stop", cs.stop_canary, hid, stop_reason, say_done=False)
            if c is not None:
                st.session_state[FLASH].append(("success", f"Canary {c.canary_id} stopped: {c.scope.label()} is back on "
                                                           f"the rules schedule (audit entry {c.stop_entry_id})."))
            st.rerun()
    if len(canaries_df):
        st.dataframe(charts.words(canaries_df), hide_index=True, width="stretch", key="canary_table")
        pre = st.number_input("Weeks before go-live to compare with", 1, 52, 8, key="canary_pre_weeks")
        if st.button(f"Compare canary {newest.canary_id} with its control group", key="canary_report"):
            act("Canary report", cs.canary_report, hid, h, newest, int(pre), say_done=False)
            st.rerun()
        rep = cs.last_report(hid, newest)
        if rep is not None:
            st.markdown(f"Difference-in-differences, {rep['n_pre_days']} weekdays before go-live {rep['go_live']} and "
                        f"{rep['n_post_days']} from it (outcomes from your records; PACU holds estimated from wheels-out "
                        "times and PACU beds):")
            st.dataframe(charts.words(cs.estimates_table(rep)), hide_index=True, width="stretch", key="canary_estimates")

    st.subheader("Rollback drills")
    folder = cs.drill_folder(h)
    d = st.columns(2)
    fault = d[0].selectbox("Fault to inject (into a copy of the hospital)", cs.drill_faults(), key="drill_fault")
    drill_refusal = (state.why_not("run_gates")
                     or (None if folder is not None else "The hospital's folder is not on this machine: run `python -m engine drill`.")
                     or (None if state.has_booked_cases(h) else "A drill plans the first booked day, and this hospital has "
                         "no booked cases."))
    if d[1].button("Run the drill", key="drill_run", disabled=drill_refusal is not None, help=drill_refusal):
        with st.spinner(f"Drill {fault}: copy, inject, detect, respond, restore..."):
            rep = act("Drill", cs.run_drill, hid, h, fault, say_done=False)
        if rep is not None:
            st.session_state[FLASH].append(("success" if rep["passed"] else "error",
                                            f"Drill {rep['fault']} {'passed' if rep['passed'] else 'FAILED'} in "
                                            f"{rep['seconds']:.1f}s (audit entry {rep['audit_entry_id']})."))
        st.rerun()
    last = cs.last_drill(hid)
    if last is not None:
        st.markdown(f"**Last drill: {last['fault']}** ({'passed' if last['passed'] else 'FAILED'}; the original hospital "
                    f"folder {'untouched' if last['original_untouched'] else 'CHANGED'}; report {last['work_dir']})")
        st.dataframe(charts.words(pd.DataFrame(last["steps"])[["step", "ok", "seconds", "detail"]]), hide_index=True,
                     width="stretch", key="drill_steps")

    st.subheader("Incidents and drills on record")
    if gs.can(user, "view_audit"):
        b = cs.board(hid)
        st.caption(f"{b['n_incidents']} incident(s): " + ", ".join(f"{k} {v}" for k, v in b["by_class"].items())
                   + f". {b['n_drills']} drill(s), {b['n_drills_passed']} passed.")
        if b["incidents"]:
            st.dataframe(charts.words(cs.incident_table(b)), hide_index=True, width="stretch", key="incident_table")
        if b["drills"]:
            st.dataframe(charts.words(pd.DataFrame(b["drills"])), hide_index=True, width="stretch", key="drill_table")
        with st.form("incident_form"):
            f = st.columns(3)
            title = f[0].text_input("Title", key="inc_title")
            klass = f[1].selectbox("Defect", ["data", "model", "process"], key="inc_class")
            entries = f[2].text_input("Audit entry ids (comma-separated)", key="inc_entries")
            description = st.text_area("What failed, and how it was found", key="inc_description")
            remedy = st.text_input("What was done", key="inc_remedy")
            added = st.form_submit_button("Record the incident")
        if added:
            rec = act("Incident", cs.add_incident, hid, title, klass, description, entries, remedy, say_done=False)
            if rec is not None:
                st.session_state[FLASH].append(("success", f"Incident {rec['incident_id']} recorded ({rec['defect_class']} "
                                                           f"defect; audit entry {rec['entry_id']})."))
            st.rerun()
        if gs.can(user, "export_audit"):
            st.download_button("Export incidents and drills (JSON)", cs.export_board_bytes(hid),
                               file_name=f"incidents-{hid}.json", key="incident_export")
    else:
        st.info("Incidents and drills are read by leadership and the governance board.")

"""Data page: which hospital is loaded, feed freshness, quality report, charts, import."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from dashboard import charts, keys, state
from dashboard import data_state as ds
from engine.errors import InputError

st.title("Data")

current = state.current_hospital()
if current is None:
    st.info("No hospital loaded. Import an export below.")
else:
    hid, loaded = current
    h, report = loaded.hospital, loaded.report
    st.caption(f"Hospital **{h.name}** (`{hid}`) from `{h.source}`, stored in `{state.store().url_safe}`")
    clock = "demo clock (settings.as_of)" if h.settings.as_of else "today"
    c = h.cases
    cols = st.columns(5)
    cols[0].metric("Cases", f"{len(c):,}")
    cols[1].metric("Completed", f"{int((c['status'] == 'completed').sum()):,}")
    cols[2].metric("Booked (future)", f"{int((c['status'] == 'booked').sum()):,}")
    cols[3].metric("Rooms", len(h.rooms))
    cols[4].metric("Quarantined rows", report.n_quarantined)

    overview, quality, capacity, versions_tab = st.tabs(["Overview", "Quality report", "Blocks and staffing",
                                                         "Versions"])
    with overview:
        st.subheader("Feed freshness")
        st.caption(f"Measured against {h.as_of():%Y-%m-%d} ({clock}).")
        fresh = ds.feed_freshness(h)
        st.dataframe(fresh, hide_index=True, width="stretch")
        stale = fresh[fresh["status"] == "stale"]
        for rec in stale.itertuples():
            st.warning(f"Feed **{rec.feed}** is stale: {rec.measure} {rec.days} days against a threshold of {rec.threshold_days} days.")

        st.subheader("Cases per service line per week")
        counts = ds.weekly_case_counts(c)
        statuses = st.multiselect(
            "Statuses", ["completed", "cancelled", "booked"], default=["completed", "booked"], key="data_statuses"
        )
        st.plotly_chart(charts.weekly_cases(counts, statuses), width="stretch", key="weekly_cases_chart")

        st.subheader("Room time per service line")
        durations = ds.duration_by_service_line(c, h.settings.timezone)
        if len(durations):
            st.plotly_chart(charts.duration_distribution(durations), width="stretch", key="duration_chart")
        else:
            st.info("No completed cases with wheels-in and wheels-out times.")

    with quality:
        st.subheader("Quality report")
        st.dataframe(report.summary(), hide_index=True, width="stretch")
        q = report.quarantine
        st.markdown(f"**{len(q)} quarantined problems** on {report.n_quarantined} rows (set aside, not used).")
        if len(q):
            st.dataframe(q, hide_index=True, width="stretch")
            st.download_button(
                "Download quarantined rows (CSV)",
                q.to_csv(index=False).encode(),
                file_name=f"{hid}-quarantine.csv",
                key="download_quarantine",
            )

    with capacity:
        inferred = h.settings.get("inferred") or {}
        if inferred:
            st.info("Some capacity files were **inferred from the case history** because the export had none. "
                    "Review them; to correct one, download it, edit it and give it to the import (mapping `files:`), "
                    "which always wins over an inferred file.")
            for fname, how in inferred.items():
                st.markdown(f"- `{fname}`: {how}")
        for fname, frame in (("blocks.csv", h.blocks), ("staffing.csv", h.staffing)):
            st.subheader(fname + (" (inferred)" if fname in inferred else ""))
            if len(frame):
                st.dataframe(frame, hide_index=True, width="stretch")
                st.download_button(f"Download {fname}", frame.to_csv(index=False, date_format="%Y-%m-%d").encode(),
                                   file_name=f"{hid}-{fname}", key=f"download_{fname}")
            else:
                st.caption(f"No {fname}: " + ("every room is open time." if fname == "blocks.csv"
                                              else "no staffed rooms are known, so nothing can be planned."))

    with versions_tab:
        st.subheader("Stored versions")
        st.caption("An import that replaces this hospital keeps the data it replaces, so it can be restored.")
        versions = ds.hospital_versions(hid)
        st.dataframe(versions, hide_index=True, width="stretch", key="versions_table")
        earlier = versions.loc[~versions["current"], "version"].tolist()
        if earlier:
            no_restore = state.why_not(ds.IMPORT_ACTION)
            pick = st.selectbox("Version to restore", earlier, key="restore_version")
            sure = st.checkbox(f"Yes, make version {pick} current (the current data is kept as well)",
                               key="restore_confirm", disabled=bool(no_restore))
            if st.button("Restore", key="restore_button", disabled=bool(no_restore) or not sure,
                         help=no_restore):
                try:
                    ds.restore_hospital_version(hid, int(pick))
                except (PermissionError, KeyError, ValueError) as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Version {pick} of `{hid}` is current again.")
                    st.rerun()
        else:
            st.caption("No earlier versions.")

st.divider()
st.subheader("Import a hospital export")
st.caption(
    "Upload a case export (CSV, Parquet or Excel) and a YAML mapping that names its columns "
    "(see data/mappings/README.md). The import is validated like every hospital folder; it lands whole or not at all."
)
refusal = state.why_not(ds.IMPORT_ACTION)
if refusal:
    st.info(f"Importing is not available to you: {refusal}")
mappings = ds.shipped_mappings()
OWN = "(my own mapping: upload it below)"
SUGGEST = "(suggest a mapping from the export, then review and edit it)"
source = st.file_uploader("Export file", type=["csv", "txt", "tsv", "parquet", "xlsx"], key="import_source")
choice = st.selectbox("Mapping", [*mappings, SUGGEST, OWN], index=0, key="import_mapping_choice",
                      help="An uploaded mapping is used whatever is selected here.")
own_mapping = st.file_uploader("Own mapping (YAML)", type=["yaml", "yml"], key="import_mapping_file")
edited_mapping = None
if own_mapping is not None:
    st.caption(f"Using the uploaded mapping **{own_mapping.name}**.")
elif choice == SUGGEST and source is not None:
    try:
        suggested = ds.suggested_mapping(source.name, source.getvalue())
    except InputError as exc:
        st.error("The export could not be read to suggest a mapping.")
        st.dataframe(ds.problems_frame(exc.problems), hide_index=True, width="stretch")
    else:
        st.caption("Review the suggested mapping: lines marked **CHECK** need a person's eye (status and "
                   "service values, date formats, the hospital's settings). Edit it here; the import uses this text.")
        # Keyed by the upload, so a new export gets a fresh suggestion.
        digest = hashlib.sha1(source.getvalue()).hexdigest()[:10]
        edited_mapping = st.text_area("Suggested mapping (YAML)", value=suggested, height=420,
                                      key=f"import_mapping_text_{digest}")
        st.download_button("Download this mapping", edited_mapping.encode(), key="download_suggested_mapping",
                           file_name=f"{Path(source.name).stem}.yaml")
name = st.text_input("Name for this hospital", value="imported", key="import_name")
target = ds.hospital_id_for(name)
replace = False
if target in set(state.hospitals()["hospital_id"]):
    versions = ds.hospital_versions(target)
    cur = versions[versions["current"]].iloc[0]
    st.warning(f"A hospital `{target}` is already stored (version {cur['version']}, {cur['n_cases']:,} cases). "
               "Importing under this name replaces it; its current data is kept as an earlier version that "
               "can be restored under Versions.")
    replace = st.checkbox(f"Yes, replace `{target}`", value=False, key="import_replace")
submitted = st.button("Import and validate", key="import_submit", type="primary", disabled=bool(refusal))

if submitted:
    if source is None:
        st.error("Choose an export file to import.")
    elif own_mapping is None and choice == OWN:
        st.error("Upload a mapping file, or choose a shipped mapping.")
    elif own_mapping is None and choice == SUGGEST and edited_mapping is None:
        st.error("The export could not be read, so there is no suggested mapping to import with.")
    else:
        if own_mapping is not None:
            mapping_name, mapping_bytes = own_mapping.name, own_mapping.getvalue()
        elif choice == SUGGEST:
            mapping_name, mapping_bytes = f"{Path(source.name).stem}.yaml", edited_mapping.encode()
        else:
            mapping_name, mapping_bytes = mappings[choice].name, mappings[choice].read_bytes()
        try:
            with st.spinner("Importing and validating..."):
                new_id, result = ds.import_upload(source.name, source.getvalue(), mapping_name, mapping_bytes, name,
                                                     replace=replace)
        except ds.ReplaceNotConfirmed as exc:
            st.error(str(exc))
        except PermissionError as exc:
            st.error(f"Not imported: {exc}")
        except InputError as exc:
            st.error(f"Import rejected: {len(exc.problems)} problems. Nothing was stored.")
            st.dataframe(ds.problems_frame(exc.problems), hide_index=True, width="stretch", key="import_errors")
        else:
            summary = result.summary()
            st.success(
                f"Imported `{new_id}`: {summary['rows_written']} cases stored, {summary['rows_quarantined']} rows quarantined."
            )
            st.session_state[keys.IMPORT_DONE_KEY] = new_id


def _switch_to_import() -> None:
    # A callback runs before the sidebar's hospital picker is drawn, so it may set its value.
    st.session_state[state.HOSPITAL_KEY] = st.session_state.pop(keys.IMPORT_DONE_KEY)


if st.session_state.get(keys.IMPORT_DONE_KEY):
    st.button("Switch to the imported hospital", key="switch_imported", on_click=_switch_to_import)

"""Read-only views of a schedule for people: PACU load curve, printable day lists."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd


def pacu_occupancy(schedule: pd.DataFrame, date: pd.Timestamp, step_minutes: int = 5) -> pd.DataFrame:
    """Patients in PACU over the day (time, occupancy), from pacu_in/pacu_out of scheduled cases."""
    d = schedule[(schedule["status"] == "scheduled") & (pd.to_datetime(schedule["date"]) == pd.Timestamp(date))]
    if not len(d):
        return pd.DataFrame({"time": [], "occupancy": []})
    t0 = pd.Timestamp(date) + pd.Timedelta(hours=6)
    t1 = max(pd.to_datetime(d["pacu_out"]).max(), pd.Timestamp(date) + pd.Timedelta(hours=18))
    grid = pd.date_range(t0, t1, freq=f"{step_minutes}min")
    pin = pd.to_datetime(d["pacu_in"]).to_numpy()
    pout = pd.to_datetime(d["pacu_out"]).to_numpy()
    occ = ((pin[None, :] <= grid.to_numpy()[:, None]) & (pout[None, :] > grid.to_numpy()[:, None])).sum(axis=1)
    return pd.DataFrame({"time": grid, "occupancy": occ.astype(int)})


def day_list(schedule: pd.DataFrame, cases: pd.DataFrame, by: str = "room_id") -> pd.DataFrame:
    """The day's scheduled cases in order, grouped by room or surgeon, with procedure names."""
    if by not in ("room_id", "surgeon_id"):
        raise ValueError(f"by must be room_id or surgeon_id, got {by!r}")
    s = schedule[schedule["status"] == "scheduled"].copy()
    names = cases.set_index("case_id")["procedure_name"] if "procedure_name" in cases.columns else pd.Series(dtype=str)
    s["procedure"] = s["case_id"].map(names)
    s["start"] = pd.to_datetime(s["start"]).dt.strftime("%H:%M")
    s["end_p50"] = pd.to_datetime(s["end_p50"]).dt.strftime("%H:%M")
    s["end_p80"] = pd.to_datetime(s["end_p80"]).dt.strftime("%H:%M")
    cols = ["date", by, "start", "end_p50", "end_p80", "case_id", "procedure", "service_line",
            "surgeon_id" if by == "room_id" else "room_id"]
    return s.sort_values(["date", by, "start"])[cols].reset_index(drop=True)


def day_list_html(schedule: pd.DataFrame, cases: pd.DataFrame, hospital_name: str, by: str = "room_id") -> str:
    """A printable HTML day list (one table per room or surgeon per date)."""
    lst = day_list(schedule, cases, by)
    title = "Room" if by == "room_id" else "Surgeon"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(hospital_name)} day list</title>",
             "<style>body{font-family:sans-serif;font-size:11pt} table{border-collapse:collapse;margin-bottom:18px;width:100%}"
             "td,th{border:1px solid #999;padding:3px 6px;text-align:left} h2{page-break-before:always;font-size:13pt}"
             "h2:first-of-type{page-break-before:auto} @media print{.noprint{display:none}}</style></head><body>",
             f"<h1>{html.escape(hospital_name)}: day list by {title.lower()}</h1>",
             "<p class='noprint'>Times: planned wheels-in; end at P50 and at P80 of the forecast duration.</p>"]
    for (date, key), g in lst.groupby(["date", by], sort=True):
        parts.append(f"<h2>{pd.Timestamp(date):%A %d %B %Y}: {title} {html.escape(str(key))}</h2><table><tr>"
                     + "".join(f"<th>{html.escape(c)}</th>" for c in g.columns if c not in ("date", by)) + "</tr>")
        for r in g.drop(columns=["date", by]).itertuples(index=False):
            parts.append("<tr>" + "".join(f"<td>{html.escape('' if (isinstance(v, float) and np.isnan(v)) else str(v))}</td>" for v in r) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)

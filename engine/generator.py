"""The seeded synthetic demo hospital.

``generate_hospital(GeneratorParams())`` builds a whole hospital folder in memory (cases,
rooms, surgeons, blocks, staffing, settings and the hidden truth); ``write_hospital`` writes it
whole-or-nothing. The generating model, its parameters and the published figures it is
calibrated to are described in ``data/GENERATOR.md``.

Everything is drawn from ``numpy.random.SeedSequence(seed)``: the same parameters always give
the same hospital, byte for byte. Each component (catalog, surgeons, patients, ...) has its own
child stream so that the parts stay independent of each other.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.contract import (
    BLOCKS_COLUMNS,
    CASES_COLUMNS,
    ROOMS_COLUMNS,
    SETTINGS_FILE,
    STAFFING_COLUMNS,
    SURGEONS_COLUMNS,
)
from engine.io import atomic_write_folder, write_csv
from engine.timeutil import hhmm_to_minutes, parse_window

logger = logging.getLogger(__name__)

__all__ = [
    "GeneratorParams",
    "generate_hospital",
    "write_hospital",
    "write_frames",
    "SERVICE_LINE_NAMES",
    "EQUIPMENT",
    "OUTPUT_FILES",
]

OUTPUT_FILES = ("cases.csv", "rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv", "truth.csv",
                SETTINGS_FILE)

EQUIPMENT = ("robot", "hybrid", "cath", "fluoro", "laparoscopy")
_EQ_BIT = {name: 1 << i for i, name in enumerate(EQUIPMENT)}

ANESTHESIA_TYPES = ("general", "regional", "MAC", "local")
ADMISSION_TYPES = ("outpatient", "same-day admit", "inpatient")
CANCEL_REASONS = ("patient not fit", "patient no-show", "no bed", "surgeon unavailable", "equipment",
                  "patient request")

# add-ons that cannot start by this minute of the day are postponed
ADDON_LAST_START_MINUTE = 22 * 60

# base room time of a procedure = ROOM_TIME_SCALE * catalog minutes + ROOM_TIME_OVERHEAD_MINUTES
ROOM_TIME_SCALE = 1.1
ROOM_TIME_OVERHEAD_MINUTES = 12.0

SITE_NAMES = ("Main", "North", "South", "East", "West", "Central", "Riverside", "Lakeside")


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorParams:
    """Knobs of the demo hospital. Units are in the names; validated on construction."""

    seed: int = 7
    rooms: int = 16
    sites: int = 2
    history_days: int = 730
    horizon_days: int = 14
    today: dt.date = dt.date(2027, 1, 4)
    n_service_lines: int = 10
    n_surgeons: int = 60
    n_procedures: int = 150
    # hospital rules written to settings.toml
    turnover_minutes: float = 30.0
    pacu_minutes: float = 75.0
    overtime_cap_minutes: float = 120.0
    prime_time: str = "07:30-15:30"
    hospital_name: str = "Demo General Hospital"
    # demand and behaviour
    block_fill_mean: float = 0.90
    horizon_fill_mean: float = 0.94
    addon_rate_per_room: float = 0.32
    cancel_rate: float = 0.062
    late_start_prob: float = 0.35
    late_start_mean_minutes: float = 12.0
    bmi_missing_rate: float = 0.02

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"GeneratorParams.{name} must be {rule}, got {getattr(self, name)!r}")

        for name in ("seed", "rooms", "sites", "history_days", "horizon_days", "n_service_lines",
                     "n_surgeons", "n_procedures"):
            value = getattr(self, name)
            need(isinstance(value, (int, np.integer)) and not isinstance(value, bool), name, "an integer")
        need(self.seed >= 0, "seed", ">= 0")
        need(self.rooms >= 1, "rooms", ">= 1")
        need(1 <= self.sites <= self.rooms, "sites", "between 1 and rooms")
        need(self.history_days >= 0, "history_days", ">= 0")
        need(self.horizon_days >= 0, "horizon_days", ">= 0")
        need(isinstance(self.today, dt.date) and not isinstance(self.today, dt.datetime), "today",
             "a datetime.date")
        need(1 <= self.n_service_lines <= len(_SERVICE_LINES), "n_service_lines",
             f"between 1 and {len(_SERVICE_LINES)}")
        need(self.n_surgeons >= self.n_service_lines, "n_surgeons", ">= n_service_lines")
        need(self.n_procedures >= 2 * self.n_service_lines, "n_procedures", ">= 2 * n_service_lines")
        need(self.turnover_minutes > 0, "turnover_minutes", "> 0")
        need(self.pacu_minutes > 0, "pacu_minutes", "> 0")
        need(self.overtime_cap_minutes >= 0, "overtime_cap_minutes", ">= 0")
        need(0.1 <= self.block_fill_mean <= 0.99, "block_fill_mean", "between 0.1 and 0.99")
        need(0.1 <= self.horizon_fill_mean <= 0.99, "horizon_fill_mean", "between 0.1 and 0.99")
        need(self.addon_rate_per_room >= 0, "addon_rate_per_room", ">= 0")
        need(0.0 < self.cancel_rate < 0.5, "cancel_rate", "between 0 and 0.5")
        need(0.0 <= self.late_start_prob <= 1.0, "late_start_prob", "between 0 and 1")
        need(self.late_start_mean_minutes >= 0, "late_start_mean_minutes", ">= 0")
        need(0.0 <= self.bmi_missing_rate < 1.0, "bmi_missing_rate", "between 0 and 1")
        try:
            parse_window(self.prime_time)
            ok = True
        except ValueError:
            ok = False
        need(ok, "prime_time", "'HH:MM-HH:MM', starting before it ends")


def _min_to_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---------------------------------------------------------------------------------------------
# Catalog: service lines and procedures (room time medians in minutes, wheels-in to wheels-out)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ServiceLine:
    name: str
    block_share: float      # share of elective block time
    addon_share: float      # share of add-on arrivals
    age_mean: float
    female_p: float
    main_only: bool         # never at an ambulatory site
    asa_shift: float
    anesthesia_p: tuple[float, float, float, float]   # general, regional, MAC, local
    cancel_effect: float    # log-odds
    lead_factor: float      # multiplies the booking lead time
    admit_shift: float      # pushes toward inpatient admission
    procedures: tuple[tuple[str, str, float, str, str], ...] = field(repr=False)


# (code, name, base median room minutes, required equipment, kind) in order of popularity;
# kind E = elective, B = both elective and add-on, A = mostly add-on (urgent/emergent).
_SERVICE_LINES: tuple[_ServiceLine, ...] = (
    _ServiceLine("Orthopedics", 0.21, 0.22, 62, 0.55, False, 0.0, (0.55, 0.38, 0.05, 0.02), 0.0, 1.1,
                 0.0, (
        ("27447", "Total knee arthroplasty", 140, "", "E"),
        ("27130", "Total hip arthroplasty", 150, "", "E"),
        ("29881", "Knee arthroscopy with meniscectomy", 60, "", "E"),
        ("29827", "Arthroscopic rotator cuff repair", 115, "", "E"),
        ("27245", "Intramedullary nailing of intertrochanteric fracture", 100, "fluoro", "A"),
        ("25607", "ORIF distal radius fracture", 85, "fluoro", "B"),
        ("27236", "Hemiarthroplasty for femoral neck fracture", 120, "fluoro", "A"),
        ("27814", "ORIF bimalleolar ankle fracture", 100, "fluoro", "B"),
        ("29888", "Arthroscopic ACL reconstruction", 125, "", "E"),
        ("23472", "Total shoulder arthroplasty", 155, "fluoro", "E"),
        ("64721", "Carpal tunnel release", 40, "", "E"),
        ("28296", "Bunionectomy with osteotomy", 85, "fluoro", "E"),
        ("27134", "Revision total hip arthroplasty", 250, "fluoro", "E"),
        ("27506", "Intramedullary nailing of femoral shaft fracture", 150, "fluoro", "A"),
        ("26055", "Trigger finger release", 35, "", "E"),
    )),
    _ServiceLine("General Surgery", 0.19, 0.30, 54, 0.52, False, 0.1, (0.92, 0.0, 0.07, 0.01), 0.05,
                 0.9, 0.2, (
        ("47562", "Laparoscopic cholecystectomy", 95, "laparoscopy", "B"),
        ("49650", "Laparoscopic inguinal hernia repair", 85, "laparoscopy", "E"),
        ("49505", "Open inguinal hernia repair", 75, "", "E"),
        ("44970", "Laparoscopic appendectomy", 70, "laparoscopy", "A"),
        ("19301", "Partial mastectomy", 80, "", "E"),
        ("49560", "Open ventral hernia repair", 125, "", "E"),
        ("44204", "Laparoscopic partial colectomy", 210, "laparoscopy", "E"),
        ("43775", "Laparoscopic sleeve gastrectomy", 125, "laparoscopy", "E"),
        ("49000", "Exploratory laparotomy", 150, "", "A"),
        ("19303", "Total mastectomy", 125, "", "E"),
        ("44120", "Small bowel resection", 185, "", "A"),
        ("43644", "Laparoscopic Roux-en-Y gastric bypass", 185, "laparoscopy", "E"),
        ("44205", "Robotic right colectomy", 235, "robot", "E"),
        ("60240", "Total thyroidectomy", 135, "", "E"),
        ("48150", "Pancreaticoduodenectomy (Whipple)", 420, "", "E"),
    )),
    _ServiceLine("Urology", 0.08, 0.08, 64, 0.2, False, 0.15, (0.75, 0.10, 0.13, 0.02), 0.0, 1.0, 0.0, (
        ("52000", "Cystoscopy", 35, "", "E"),
        ("52353", "Ureteroscopy with laser lithotripsy", 75, "fluoro", "B"),
        ("55866", "Robotic radical prostatectomy", 240, "robot", "E"),
        ("52332", "Cystoscopy with ureteral stent insertion", 45, "fluoro", "A"),
        ("52601", "Transurethral resection of prostate", 85, "", "E"),
        ("52235", "Transurethral resection of bladder tumor", 60, "", "E"),
        ("50543", "Robotic partial nephrectomy", 240, "robot", "E"),
        ("50545", "Laparoscopic radical nephrectomy", 210, "laparoscopy", "E"),
        ("50080", "Percutaneous nephrolithotomy", 150, "fluoro", "E"),
        ("55040", "Hydrocelectomy", 55, "", "E"),
        ("55250", "Vasectomy", 40, "", "E"),
        ("54600", "Orchiopexy for testicular torsion", 55, "", "A"),
        ("51590", "Radical cystectomy with ileal conduit", 360, "", "E"),
        ("53445", "Artificial urinary sphincter insertion", 120, "", "E"),
        ("54405", "Inflatable penile prosthesis insertion", 110, "", "E"),
    )),
    _ServiceLine("Gynecology", 0.08, 0.08, 46, 1.0, False, -0.2, (0.88, 0.04, 0.07, 0.01), -0.1, 1.0,
                 -0.2, (
        ("58558", "Hysteroscopy with polypectomy", 45, "", "E"),
        ("58571", "Total laparoscopic hysterectomy", 150, "laparoscopy", "E"),
        ("58120", "Dilation and curettage", 40, "", "B"),
        ("58661", "Laparoscopic salpingo-oophorectomy", 85, "laparoscopy", "E"),
        ("59151", "Laparoscopic salpingectomy for ectopic pregnancy", 75, "laparoscopy", "A"),
        ("58572", "Robotic hysterectomy, uterus over 250 g", 185, "robot", "E"),
        ("58150", "Total abdominal hysterectomy", 150, "", "E"),
        ("57288", "Midurethral sling", 65, "", "E"),
        ("58260", "Vaginal hysterectomy", 115, "", "E"),
        ("57522", "Cervical conization (LEEP)", 35, "", "E"),
        ("58662", "Laparoscopic excision of endometriosis", 125, "laparoscopy", "E"),
        ("57260", "Anterior and posterior colporrhaphy", 95, "", "E"),
        ("58545", "Laparoscopic myomectomy", 165, "laparoscopy", "E"),
        ("57425", "Robotic sacrocolpopexy", 215, "robot", "E"),
        ("58953", "Ovarian cancer debulking", 300, "", "E"),
    )),
    _ServiceLine("Cardiac Surgery", 0.08, 0.04, 66, 0.3, True, 1.0, (1.0, 0.0, 0.0, 0.0), 0.25, 0.55,
                 3.0, (
        ("33533", "Coronary artery bypass, arterial graft", 270, "", "E"),
        ("33536", "Coronary artery bypass, four or more grafts", 320, "", "E"),
        ("33405", "Aortic valve replacement", 255, "", "E"),
        ("33361", "Transcatheter aortic valve replacement", 150, "hybrid;cath;fluoro", "E"),
        ("33430", "Mitral valve replacement", 290, "", "E"),
        ("33510", "Coronary artery bypass, venous graft", 260, "", "E"),
        ("33427", "Mitral valve repair", 280, "", "E"),
        ("33418", "Transcatheter mitral valve repair", 185, "hybrid;cath;fluoro", "E"),
        ("33410", "Aortic valve replacement, stentless", 270, "", "E"),
        ("33967", "Intra-aortic balloon pump insertion", 45, "cath;fluoro", "A"),
        ("33863", "Aortic root replacement (Bentall)", 360, "", "E"),
        ("33641", "Atrial septal defect repair", 220, "", "E"),
        ("33020", "Pericardial window", 90, "", "A"),
        ("33300", "Repair of cardiac wound", 240, "", "A"),
        ("33530", "Reoperation coronary bypass", 380, "", "E"),
    )),
    _ServiceLine("Vascular Surgery", 0.08, 0.10, 68, 0.35, True, 0.8, (0.80, 0.10, 0.10, 0.0), 0.15,
                 0.7, 0.6, (
        ("35301", "Carotid endarterectomy", 150, "", "E"),
        ("34705", "Endovascular aortic aneurysm repair", 180, "hybrid;fluoro", "E"),
        ("36821", "Arteriovenous fistula creation", 90, "", "E"),
        ("35656", "Femoral-popliteal bypass", 240, "", "E"),
        ("37224", "Femoral-popliteal angioplasty", 95, "hybrid;fluoro", "E"),
        ("27880", "Below-knee amputation", 80, "", "A"),
        ("34201", "Femoral embolectomy", 105, "fluoro", "A"),
        ("36830", "Arteriovenous graft placement", 105, "", "E"),
        ("27590", "Above-knee amputation", 75, "", "A"),
        ("36475", "Endovenous radiofrequency ablation", 60, "", "E"),
        ("35566", "Femoral-tibial bypass", 275, "", "E"),
        ("35081", "Open abdominal aortic aneurysm repair", 300, "", "B"),
        ("28805", "Transmetatarsal amputation", 65, "", "A"),
        ("33880", "Thoracic endovascular aortic repair", 200, "hybrid;fluoro", "E"),
        ("35371", "Femoral thromboendarterectomy", 155, "", "E"),
    )),
    _ServiceLine("Neurosurgery", 0.11, 0.07, 57, 0.48, True, 0.3, (0.97, 0.0, 0.03, 0.0), 0.1, 0.9, 0.8, (
        ("63030", "Lumbar microdiscectomy", 110, "fluoro", "E"),
        ("22551", "Anterior cervical discectomy and fusion", 155, "fluoro", "E"),
        ("63047", "Lumbar laminectomy", 135, "", "E"),
        ("22633", "Lumbar interbody fusion", 280, "fluoro", "E"),
        ("61510", "Craniotomy for supratentorial tumor", 300, "", "E"),
        ("61312", "Craniotomy for subdural hematoma", 150, "", "A"),
        ("62223", "Ventriculoperitoneal shunt", 90, "", "B"),
        ("61154", "Burr hole evacuation of hematoma", 65, "", "A"),
        ("63650", "Spinal cord stimulator lead placement", 75, "fluoro", "E"),
        ("63081", "Cervical corpectomy", 285, "fluoro", "E"),
        ("61697", "Intracranial aneurysm clipping", 360, "", "E"),
        ("22800", "Posterior spinal fusion for deformity", 420, "fluoro", "E"),
        ("64718", "Ulnar nerve transposition", 65, "", "E"),
        ("62230", "Shunt revision", 80, "", "A"),
        ("61885", "Neurostimulator pulse generator insertion", 55, "", "E"),
    )),
    _ServiceLine("ENT", 0.06, 0.04, 44, 0.5, False, -0.1, (0.92, 0.0, 0.05, 0.03), -0.05, 1.1, -0.3, (
        ("42820", "Tonsillectomy and adenoidectomy", 40, "", "E"),
        ("31255", "Endoscopic sinus surgery with ethmoidectomy", 100, "", "E"),
        ("69436", "Tympanostomy tubes", 25, "", "E"),
        ("30520", "Septoplasty", 65, "", "E"),
        ("42826", "Tonsillectomy, adult", 45, "", "E"),
        ("60220", "Thyroid lobectomy", 105, "", "E"),
        ("30140", "Inferior turbinate reduction", 40, "", "E"),
        ("60500", "Parathyroidectomy", 115, "", "E"),
        ("69631", "Tympanoplasty", 125, "", "E"),
        ("31541", "Microlaryngoscopy with excision", 45, "", "E"),
        ("31600", "Tracheostomy", 45, "", "A"),
        ("42415", "Parotidectomy", 185, "", "E"),
        ("69930", "Cochlear implant", 155, "", "E"),
        ("38724", "Modified radical neck dissection", 245, "", "E"),
        ("21325", "Closed reduction of nasal fracture", 35, "", "B"),
    )),
    _ServiceLine("Plastic Surgery", 0.06, 0.04, 47, 0.75, False, -0.1, (0.70, 0.02, 0.18, 0.10), 0.05,
                 1.2, -0.3, (
        ("19318", "Breast reduction", 180, "", "E"),
        ("19325", "Breast augmentation", 95, "", "E"),
        ("19357", "Breast reconstruction with tissue expander", 150, "", "E"),
        ("11042", "Wound debridement", 40, "", "A"),
        ("15830", "Panniculectomy", 155, "", "E"),
        ("14301", "Adjacent tissue transfer", 80, "", "E"),
        ("15823", "Blepharoplasty", 75, "", "E"),
        ("30400", "Rhinoplasty", 150, "", "E"),
        ("15100", "Split-thickness skin graft", 70, "", "B"),
        ("26356", "Flexor tendon repair", 95, "", "A"),
        ("19364", "Free flap breast reconstruction (DIEP)", 420, "", "E"),
        ("15734", "Muscle flap of trunk", 185, "", "E"),
        ("15828", "Rhytidectomy (facelift)", 240, "", "E"),
        ("11770", "Pilonidal cyst excision", 45, "", "E"),
        ("10060", "Incision and drainage of abscess", 30, "", "A"),
    )),
    _ServiceLine("Ophthalmology", 0.05, 0.03, 70, 0.55, False, 0.2, (0.08, 0.05, 0.72, 0.15), -0.15, 1.3,
                 -1.0, (
        ("66984", "Cataract extraction with lens implant", 35, "", "E"),
        ("66982", "Complex cataract extraction with lens implant", 45, "", "E"),
        ("67036", "Pars plana vitrectomy", 90, "", "E"),
        ("67108", "Retinal detachment repair", 110, "", "A"),
        ("66170", "Trabeculectomy", 70, "", "E"),
        ("66180", "Glaucoma drainage device", 85, "", "E"),
        ("65756", "Endothelial keratoplasty", 75, "", "E"),
        ("67042", "Vitrectomy with membrane peel", 100, "", "E"),
        ("67904", "Ptosis repair", 60, "", "E"),
        ("65730", "Penetrating keratoplasty", 95, "", "E"),
        ("67311", "Strabismus surgery", 60, "", "E"),
        ("68720", "Dacryocystorhinostomy", 75, "", "E"),
        ("65285", "Repair of ruptured globe", 100, "", "A"),
        ("66174", "Canaloplasty", 50, "", "E"),
        ("67005", "Anterior vitrectomy", 50, "", "E"),
    )),
)
SERVICE_LINE_NAMES = tuple(sl.name for sl in _SERVICE_LINES)

# the largest share of a line's weekly blocks that may sit at an ambulatory site: eye, ENT and
# plastics are mostly outpatient work, the others keep their big cases at the main hospital
_AMBULATORY_MAX = {"Ophthalmology": 1.0, "ENT": 0.8, "Plastic Surgery": 0.7, "Urology": 0.4,
                   "Gynecology": 0.4, "Orthopedics": 0.3, "General Surgery": 0.25}

_LAST_NAMES = (
    "Abbott", "Alvarez", "Bennett", "Brooks", "Campbell", "Chen", "Coleman", "Diaz", "Dubois", "Edwards",
    "Evans", "Fischer", "Foster", "Garcia", "Gupta", "Hansen", "Hayes", "Hughes", "Ibrahim", "Ito",
    "Jensen", "Johnson", "Kaur", "Keller", "Kim", "Kowalski", "Larsen", "Lopez", "Martin", "Mendez",
    "Miller", "Moreau", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Perez", "Quinn",
    "Ramos", "Reyes", "Rossi", "Russo", "Sato", "Schmidt", "Shah", "Silva", "Singh", "Sullivan",
    "Tanaka", "Torres", "Turner", "Vargas", "Walsh", "Weber", "Williams", "Wong", "Yamada", "Zhang",
    "Andersen", "Bauer", "Castro", "Dimitrov", "Haddad", "Lindqvist", "Mensah", "Osei", "Popescu", "Varga",
)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _largest_remainder(weights: np.ndarray, total: int, minimum: int = 0) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``weights``, each >= ``minimum``."""
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    base = np.full(n, minimum, dtype=int)
    rest = total - base.sum()
    if rest <= 0:
        # not enough to give everyone the minimum: the heaviest first
        out = np.zeros(n, dtype=int)
        order = np.argsort(-weights, kind="stable")
        out[order[:total]] = 1
        return out
    share = weights / weights.sum() * rest
    counts = np.floor(share).astype(int)
    left = rest - counts.sum()
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:left]] += 1
    return base + counts


def _whole(x: float) -> int | float:
    """30.0 -> 30 (TOML readers then see the integer the settings mean)."""
    return int(x) if float(x).is_integer() else float(x)


def _round15(x: np.ndarray) -> np.ndarray:
    return np.maximum(15.0, np.round(np.asarray(x, dtype=float) / 15.0) * 15.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) weight matrix (rows need not be normalised)."""
    cum = np.cumsum(weights, axis=1)
    total = cum[:, -1:]
    u = rng.random((weights.shape[0], 1)) * total
    idx = (cum <= u).sum(axis=1)
    return np.minimum(idx, weights.shape[1] - 1)


def _us_holidays(years: range) -> list[dt.date]:
    """Major US holidays on which no elective lists run (observed dates)."""
    out: list[dt.date] = []

    def observed(d: dt.date) -> dt.date:
        if d.weekday() == 5:
            return d - dt.timedelta(days=1)
        if d.weekday() == 6:
            return d + dt.timedelta(days=1)
        return d

    def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
        d = dt.date(year, month, 1)
        d += dt.timedelta(days=(weekday - d.weekday()) % 7)
        return d + dt.timedelta(weeks=n - 1)

    def last_weekday(year: int, month: int, weekday: int) -> dt.date:
        d = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
        return d - dt.timedelta(days=(d.weekday() - weekday) % 7)

    for y in years:
        out += [observed(dt.date(y, 1, 1)), last_weekday(y, 5, 0), observed(dt.date(y, 7, 4)),
                nth_weekday(y, 9, 0, 1), nth_weekday(y, 11, 3, 4), observed(dt.date(y, 12, 25))]
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# The static world: procedures, rooms, surgeons, block template
# ---------------------------------------------------------------------------------------------
@dataclass
class _World:
    sls: list[_ServiceLine]
    procs: pd.DataFrame          # one row per procedure
    rooms: pd.DataFrame
    feasible: np.ndarray         # (n_rooms, n_procs) bool: procedure may run in room
    surgeons: pd.DataFrame
    pref: np.ndarray             # (n_surgeons, n_procs) elective procedure weights
    interaction: np.ndarray      # (n_surgeons, n_procs) log-duration surgeon x procedure effect
    # mean patient effect per service line, so that a procedure's base time is the median for
    # the line's typical patient (set once the elective patients are drawn)
    patient_center: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _build_procedures(params: GeneratorParams, sls: list[_ServiceLine],
                      rng: np.random.Generator) -> pd.DataFrame:
    counts = _largest_remainder(np.ones(len(sls)), params.n_procedures, minimum=2)
    rows = []
    for s, (sl, k) in enumerate(zip(sls, counts)):
        catalog = list(sl.procedures)
        for j in range(k):
            if j < len(catalog):
                code, name, base, equip, kind = catalog[j]
            else:
                # more procedures than the catalog lists: local variants of catalog entries
                _, name0, base0, equip, kind = catalog[j % len(catalog)]
                variant = j // len(catalog)
                code = f"L{s:02d}{j:03d}"
                name = f"{name0}, variant {variant}"
                base = float(base0) * float(np.exp(rng.normal(0.1, 0.15)))
            # the catalog lists surgical time plus a little; room time adds induction and emergence
            room = ROOM_TIME_SCALE * float(base) + ROOM_TIME_OVERHEAD_MINUTES
            rows.append((code, name, sl.name, s, round(room, 1), equip, kind, j))
    procs = pd.DataFrame(rows, columns=["procedure_code", "procedure_name", "service_line", "sl_idx",
                                        "base_minutes", "required_equipment", "kind", "rank"])
    if procs["procedure_code"].duplicated().any():
        raise AssertionError("duplicate procedure codes in the catalog")
    n = len(procs)
    lb = np.log(procs["base_minutes"].to_numpy())
    complexity = np.clip(0.1 + 0.8 * (lb - np.log(20)) / (np.log(420) - np.log(20))
                         + rng.normal(0, 0.06, n), 0.0, 1.0)
    procs["complexity"] = complexity
    procs["sigma"] = 0.13 + 0.19 * complexity
    procs["equip_mask"] = [sum(_EQ_BIT[e] for e in eq.split(";") if e) for eq in procs["required_equipment"]]
    popularity = (procs["rank"].to_numpy() + 1.0) ** -0.7 * np.exp(rng.normal(0, 0.25, n))
    kind = procs["kind"].to_numpy()
    procs["elective_w"] = popularity * np.select([kind == "E", kind == "B"], [1.0, 0.6], 0.03)
    procs["addon_w"] = np.sqrt(popularity) * np.select([kind == "E", kind == "B"], [0.02, 1.0], 2.5)
    main_only = np.array([sls[s].main_only for s in procs["sl_idx"]])
    rare = (procs["equip_mask"].to_numpy() & (_EQ_BIT["robot"] | _EQ_BIT["hybrid"] | _EQ_BIT["cath"])) > 0
    procs["ambulatory_ok"] = (~main_only) & (~rare) & (kind != "A") & (procs["base_minutes"] <= 160) \
        & (complexity < 0.62)
    return procs


def _build_rooms(params: GeneratorParams) -> pd.DataFrame:
    n_main = min(max(1, round(params.rooms * 0.69)), params.rooms - (params.sites - 1))
    n_other = params.rooms - n_main
    per_site = _largest_remainder(np.ones(params.sites - 1), n_other, minimum=1) if params.sites > 1 \
        else np.zeros(0, dtype=int)
    names = [SITE_NAMES[i] if i < len(SITE_NAMES) else f"Site{i + 1}" for i in range(params.sites)]
    rows = []
    main_caps = ["hybrid;cath;fluoro", "robot;laparoscopy;fluoro"]
    if n_main >= 8:
        main_caps.append("robot;laparoscopy")
    main_caps += ["fluoro", "fluoro", "laparoscopy", "laparoscopy;fluoro", "laparoscopy", "",
                  "laparoscopy", ""]
    for i in range(n_main):
        if n_main == 1:
            caps = ";".join(EQUIPMENT)
        else:
            caps = main_caps[i] if i < len(main_caps) else ("laparoscopy" if i % 2 else "")
        close = "15:30" if (n_main >= 6 and i == n_main - 1) else "17:00"
        rows.append((f"MAIN-OR{i + 1:02d}", names[0], caps, "07:30", close, True))
    amb_caps = ["laparoscopy;fluoro", "laparoscopy", ""]
    for s, k in enumerate(per_site, start=1):
        for i in range(int(k)):
            caps = amb_caps[i] if i < len(amb_caps) else ""
            close = "17:00" if i < 2 else "15:30"
            rows.append((f"{names[s].upper()}-OR{i + 1:02d}", names[s], caps, "07:30", close, False))
    rooms = pd.DataFrame(rows, columns=["room_id", "site", "capabilities", "open_time", "close_time",
                                        "is_main"])
    rooms["cap_mask"] = [sum(_EQ_BIT[e] for e in c.split(";") if e) for c in rooms["capabilities"]]
    rooms["open_min"] = [hhmm_to_minutes(t) for t in rooms["open_time"]]
    rooms["close_min"] = [hhmm_to_minutes(t) for t in rooms["close_time"]]
    return rooms


def _build_surgeons(params: GeneratorParams, sls: list[_ServiceLine], procs: pd.DataFrame,
                    rooms: pd.DataFrame, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    n_sl = len(sls)
    minimum = 2 if params.n_surgeons >= 2 * n_sl else 1
    sizes = _largest_remainder(np.array([sl.block_share for sl in sls]) ** 0.75, params.n_surgeons, minimum)
    sl_idx = np.repeat(np.arange(n_sl), sizes)
    n = len(sl_idx)
    names_perm = rng.permutation(len(_LAST_NAMES))
    initials = rng.choice(list("ABCDEFGHJKLMNPRSTW"), size=n)
    names = []
    for i in range(n):
        last = _LAST_NAMES[names_perm[i % len(_LAST_NAMES)]]
        suffix = "" if i < len(_LAST_NAMES) else f" {i // len(_LAST_NAMES) + 1}"
        names.append(f"Dr. {initials[i]}. {last}{suffix}")
    has_amb = bool((~rooms["is_main"]).any())
    amb_sites = rooms.loc[~rooms["is_main"], "site"].drop_duplicates().tolist()
    home = []
    for i in range(n):
        sl = sls[sl_idx[i]]
        if has_amb and not sl.main_only and rng.random() < 0.3:
            home.append(amb_sites[int(rng.integers(len(amb_sites)))])
        else:
            home.append(rooms["site"].iloc[0])
    effect = rng.normal(0.0, 0.15, n)
    slow = rng.random(n) < 0.10
    effect = effect + slow * 0.22
    drifting = rng.random(n) < 0.25
    drift = drifting * rng.normal(0.0, 0.12, n)            # log-duration change per year
    volume = np.exp(rng.normal(0.0, 0.5, n))
    optimism = rng.normal(-0.09, 0.06, n)                     # log bias of the surgeon's own estimate
    habitual = rng.random(n) < 0.10                           # books the same time whatever the case
    cancel_effect = rng.normal(0.0, 0.35, n)
    history_start = params.today - dt.timedelta(days=params.history_days)
    start = [history_start - dt.timedelta(days=3650)] * n
    n_new = round(0.05 * n) if n >= 20 else 0
    if n_new and params.history_days > 90:
        # a few surgeons joined recently: little history to learn from
        for i in rng.choice(n, size=n_new, replace=False):
            back = int(rng.integers(45, max(46, min(300, params.history_days - 30))))
            start[i] = params.today - dt.timedelta(days=back)
    n_procs = len(procs)
    pref = np.zeros((n, n_procs))
    proc_sl = procs["sl_idx"].to_numpy()
    ew = procs["elective_w"].to_numpy()
    for i in range(n):
        mine = np.flatnonzero(proc_sl == sl_idx[i])
        k = max(2, int(round(rng.uniform(0.45, 0.9) * len(mine))))
        p = ew[mine] / ew[mine].sum()
        chosen = rng.choice(mine, size=min(k, len(mine)), replace=False, p=p)
        pref[i, chosen] = ew[chosen] * rng.gamma(2.0, 0.5, len(chosen))
    interaction = rng.normal(0.0, 0.10, (n, n_procs))
    # the habitual booking: the surgeon's typical case, rounded to the half hour
    typical = np.exp((pref * np.log(procs["base_minutes"].to_numpy())[None, :]).sum(1) / pref.sum(1))
    default_booked = np.maximum(30.0, np.round(typical * np.exp(optimism) / 30.0) * 30.0)
    surgeons = pd.DataFrame({
        "surgeon_id": [f"S{i + 1:03d}" for i in range(n)],
        "service_line": [sls[s].name for s in sl_idx],
        "name": names,
        "home_site": home,
        "sl_idx": sl_idx,
        "effect": effect,
        "drift": drift,
        "volume": volume,
        "optimism": optimism,
        "habitual": habitual,
        "default_booked": default_booked,
        "cancel_effect": cancel_effect,
        "start_date": start,
    })
    return surgeons, pref, interaction


def _build_template(params: GeneratorParams, world: _World, rng: np.random.Generator
                    ) -> list[list[tuple[int, int, int, int, int]]]:
    """Weekly block template: per weekday (0..4) a list of (room, sl, surgeon or -1, start, end)."""
    rooms, procs, sls = world.rooms, world.procs, world.sls
    n_rooms, n_sl = len(rooms), len(sls)
    ew = procs["elective_w"].to_numpy()
    proc_sl = procs["sl_idx"].to_numpy()
    # affinity: the share of a service line's elective mix that can run in a room
    aff = np.zeros((n_sl, n_rooms))
    for s in range(n_sl):
        mine = proc_sl == s
        aff[s] = (world.feasible[:, mine] * ew[mine]).sum(1) / ew[mine].sum()
    is_main = rooms["is_main"].to_numpy()
    rare_mask = _EQ_BIT["robot"] | _EQ_BIT["hybrid"] | _EQ_BIT["cath"]
    rare_room = (rooms["cap_mask"].to_numpy() & rare_mask) > 0
    # open (unblocked) rooms: plain main rooms, kept for add-ons; more on Mondays and Fridays
    plain_main = [r for r in range(n_rooms) if is_main[r] and not rare_room[r]][::-1]
    n_open_base = 0 if n_rooms < 4 else (1 if n_rooms < 12 else 2)
    open_rooms: list[list[int]] = []
    for wd in range(5):
        k = n_open_base if wd in (0, 4) else max(0, n_open_base - 1) if n_rooms >= 12 else n_open_base
        k = min(k, len(plain_main))
        open_rooms.append([plain_main[(wd + j) % len(plain_main)] for j in range(k)] if k else [])
    slots = [(wd, r) for wd in range(5) for r in range(n_rooms) if r not in open_rooms[wd]]
    share = np.array([sl.block_share for sl in sls])
    target = _largest_remainder(share, len(slots), minimum=1 if len(slots) >= n_sl else 0)
    # service lines that need rare equipment choose first, then the main-only ones
    rare_need = np.array([(ew[(proc_sl == s)] * ((procs["equip_mask"].to_numpy()[proc_sl == s] & rare_mask) > 0)
                           ).sum() / ew[proc_sl == s].sum() for s in range(n_sl)])
    order = sorted(range(n_sl), key=lambda s: (-rare_need[s], not sls[s].main_only, -share[s]))
    owner = {}
    per_room_sl = np.zeros((n_rooms, n_sl))
    per_day_sl = np.zeros((5, n_sl))
    jitter = rng.random((n_sl, 5, n_rooms)) * 0.05
    amb_max = np.array([0.0 if sl.main_only else _AMBULATORY_MAX.get(sl.name, 0.3) for sl in sls])
    per_sl_amb = np.zeros(n_sl)

    def score(s: int, wd: int, r: int) -> float:
        a = aff[s, r]
        if a <= 0:
            return -np.inf
        v = a + 0.35 * (per_room_sl[r, s] > 0) - 0.3 * per_day_sl[wd, s] + jitter[s, wd, r]
        if rare_room[r] and per_room_sl[r, s] >= 3:
            v -= 0.6   # share a rare-equipment room between the lines that need it
        if rare_room[r] and rare_need[s] < 0.05:
            v -= 0.8   # do not waste a robot or hybrid room on a line that cannot use it
        return v

    def take(s: int, count: int, main: bool) -> None:
        for _ in range(count):
            free = [(wd, r) for (wd, r) in slots if (wd, r) not in owner and is_main[r] == main]
            if not free:
                return
            best = max(free, key=lambda x: score(s, *x))
            if score(s, *best) == -np.inf:
                return
            owner[best] = s
            per_room_sl[best[1], s] += 1
            per_day_sl[best[0], s] += 1
            per_sl_amb[s] += not main

    # ambulatory rooms first, each line up to its quota, the outpatient lines first; then the
    # main rooms for the rest of every line's target
    amb_order = sorted(range(n_sl), key=lambda s: (-amb_max[s], -share[s]))
    for s in amb_order:
        take(s, int(round(amb_max[s] * target[s])), main=False)
    for s in order:
        take(s, int(target[s] - per_sl_amb[s]), main=True)
    for wd, r in slots:  # leftovers: the line with the biggest deficit that can use the room
        if (wd, r) in owner:
            continue
        cand = [s for s in range(n_sl) if aff[s, r] > 0]
        if cand:
            # spare ambulatory time goes to the outpatient lines first
            s = max(cand, key=lambda s: (is_main[r] or amb_max[s] >= 0.7,
                                         target[s] - per_day_sl[:, s].sum(), -s))
            owner[(wd, r)] = s
            per_day_sl[wd, s] += 1
    # surgeon blocks and half-day splits
    surg = world.surgeons
    established = surg["start_date"].to_numpy() < params.today - dt.timedelta(days=params.history_days)
    template: list[list[tuple[int, int, int, int, int]]] = [[] for _ in range(5)]
    for (wd, r), s in sorted(owner.items()):
        start, end = int(rooms["open_min"].iloc[r]), int(rooms["close_min"].iloc[r])
        pool = np.flatnonzero((surg["sl_idx"].to_numpy() == s) & established)
        used = {e[2] for e in template[wd] if e[2] >= 0}
        pool = np.array([p for p in pool if p not in used], dtype=int)
        u = rng.random()
        if len(pool) >= 2 and u < 0.10 and end - start >= 480:
            mid = start + ((end - start) // 2 // 15) * 15
            w = surg["volume"].to_numpy()[pool]
            a, b = rng.choice(pool, size=2, replace=False, p=w / w.sum())
            template[wd].append((r, s, int(a), start, mid))
            template[wd].append((r, s, int(b), mid, end))
        elif len(pool) >= 1 and u < 0.32:
            w = surg["volume"].to_numpy()[pool]
            a = rng.choice(pool, p=w / w.sum())
            template[wd].append((r, s, int(a), start, end))
        else:
            template[wd].append((r, s, -1, start, end))
    return template


# ---------------------------------------------------------------------------------------------
# Patients, durations, estimates
# ---------------------------------------------------------------------------------------------
def _patients(rng: np.random.Generator, world: _World, proc: np.ndarray, main_site: np.ndarray,
              addon: np.ndarray, emergent: np.ndarray) -> dict[str, np.ndarray]:
    procs, sls = world.procs, world.sls
    n = len(proc)
    sl = procs["sl_idx"].to_numpy()[proc]
    cx = procs["complexity"].to_numpy()[proc]
    age_mean = np.array([x.age_mean for x in sls])[sl] + 6 * (cx - 0.45)
    age = np.clip(np.round(rng.normal(age_mean, 14.0)), 18, 95)
    female = rng.random(n) < np.array([x.female_p for x in sls])[sl]
    bmi = np.clip(np.exp(rng.normal(np.log(28.5), 0.19, n)), 16.0, 60.0)
    latent = (0.04 * (age - 50) + 0.07 * (bmi - 28) + np.array([x.asa_shift for x in sls])[sl]
              + 0.9 * cx + 0.6 * addon + 0.8 * emergent + rng.normal(0, 0.75, n))
    asa = 1 + (latent > -0.35).astype(int) + (latent > 1.15) + (latent > 2.55) + (latent > 3.9)
    asa = np.where(emergent, asa, np.minimum(asa, 4))
    asa = np.where(main_site, asa, np.minimum(asa, 3))
    an_p = np.array([x.anesthesia_p for x in sls])[sl]
    anest = _choice_rows(rng, an_p)
    anest = np.where((cx > 0.55) & (rng.random(n) < 0.9), 0, anest)
    adm_latent = (-2.3 + 4.6 * cx + 0.5 * (asa - 2) + 0.02 * (age - 60) + 1.8 * addon
                  + np.array([x.admit_shift for x in sls])[sl] + rng.normal(0, 0.9, n))
    adm = (adm_latent > 0).astype(int) + (adm_latent > 1.1)
    adm = np.where(main_site, adm, 0)   # ambulatory sites discharge everyone home
    return {"age": age, "female": female, "bmi": np.round(bmi, 1), "asa": asa.astype(int),
            "anesthesia": anest, "admission": adm}


def _log_median(world: _World, surgeon: np.ndarray, proc: np.ndarray, pat: dict[str, np.ndarray],
                main_site: np.ndarray, emergent: np.ndarray, day: np.ndarray, today_day: int
                ) -> np.ndarray:
    """log of the true median room time of each case: the learnable part of the duration."""
    procs = world.procs
    month = (day.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12) + 1
    return (np.log(procs["base_minutes"].to_numpy()[proc])
            + _surgeon_terms(world, surgeon, proc, day, today_day)
            + _patient_terms(world, proc, pat, emergent)
            + 0.04 * (((month == 7) | (month == 8)) & main_site)   # new residents in July
            - 0.05 * (~main_site))


def _patient_terms(world: _World | None, proc: np.ndarray, pat: dict[str, np.ndarray],
                   emergent: np.ndarray) -> np.ndarray:
    """Patient effects on log duration, centred on the service line's typical elective patient."""
    bmi, asa, an, adm = pat["bmi"], pat["asa"], pat["anesthesia"], pat["admission"]
    raw = (0.10 * (asa - 2) + 0.005 * (pat["age"] - 55)
           + 0.12 * (bmi >= 35) + 0.10 * (bmi >= 45)
           + 0.12 * (an == 0) - 0.10 * (an >= 2)
           + 0.10 * (adm == 2) + 0.10 * emergent)
    if world is None or not len(world.patient_center):
        return raw
    return raw - world.patient_center[world.procs["sl_idx"].to_numpy()[proc]]


def _sigma(world: _World, proc: np.ndarray, asa: np.ndarray, addon: np.ndarray) -> np.ndarray:
    return world.procs["sigma"].to_numpy()[proc] * (1 + 0.1 * (asa >= 4)) + 0.03 * addon


def _noise(rng: np.random.Generator, world: _World, proc: np.ndarray, asa: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per-case duration noise: a standard normal and the complication multiplier (1 or 1.3-2.0)."""
    n = len(proc)
    cx = world.procs["complexity"].to_numpy()[proc]
    z = rng.standard_normal(n)
    p_comp = 0.01 + 0.025 * cx + 0.01 * (asa >= 4)
    mult = np.where(rng.random(n) < p_comp, rng.uniform(1.3, 2.0, n), 1.0)
    return z, mult


def _duration(log_med: np.ndarray, sigma: np.ndarray, z: np.ndarray, mult: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.exp(log_med + sigma * z) * mult), 10, 1200)


def _surgeon_terms(world: _World, surgeon: np.ndarray, proc: np.ndarray, day: np.ndarray,
                   today_day: int) -> np.ndarray:
    surg = world.surgeons
    return (surg["effect"].to_numpy()[surgeon] + world.interaction[surgeon, proc]
            + surg["drift"].to_numpy()[surgeon] * (day - today_day) / 365.25)


def _booked_minutes(rng: np.random.Generator, world: _World, surgeon: np.ndarray, proc: np.ndarray,
                    pat: dict[str, np.ndarray], emergent: np.ndarray, day: np.ndarray, today_day: int
                    ) -> np.ndarray:
    """The surgeon's estimate: partly informed, optimistic, worse for complex cases, rounded."""
    procs, surg = world.procs, world.surgeons
    n = len(proc)
    cx = procs["complexity"].to_numpy()[proc]
    log_b = (np.log(procs["base_minutes"].to_numpy()[proc])
             + 0.7 * (surg["effect"].to_numpy()[surgeon]
                      + surg["drift"].to_numpy()[surgeon] * (day - today_day) / 365.25)
             + 0.3 * world.interaction[surgeon, proc]
             + 0.6 * _patient_terms(world, proc, pat, emergent)
             + surg["optimism"].to_numpy()[surgeon]
             - 0.07 * cx
             + rng.normal(0, 0.24, n))
    booked = _round15(np.exp(log_b))
    habitual = surg["habitual"].to_numpy()[surgeon] & (rng.random(n) < 0.8)
    return np.where(habitual, surg["default_booked"].to_numpy()[surgeon], booked)


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------
_STREAMS = ("catalog", "surgeons", "template", "staffing", "blocks", "candidates", "patients",
            "durations", "cancel", "day", "addons")


def generate_hospital(params: GeneratorParams) -> dict[str, pd.DataFrame | dict[str, Any]]:
    """Build the demo hospital in memory.

    Returns ``{"cases.csv", "rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv",
    "truth.csv"}`` as DataFrames (dates and datetimes as ``datetime64``) and ``"settings.toml"``
    as a dict. The same ``params`` always give identical output.
    """
    if not isinstance(params, GeneratorParams):
        raise TypeError("params must be a GeneratorParams")
    seq = np.random.SeedSequence(params.seed)
    rngs = {name: np.random.default_rng(child) for name, child in zip(_STREAMS, seq.spawn(len(_STREAMS)))}

    sls = list(_SERVICE_LINES[: params.n_service_lines])
    procs = _build_procedures(params, sls, rngs["catalog"])
    rooms = _build_rooms(params)
    surgeons, pref, interaction = _build_surgeons(params, sls, procs, rooms, rngs["surgeons"])
    pm = procs["equip_mask"].to_numpy()
    rm = rooms["cap_mask"].to_numpy()
    feasible = ((pm[None, :] & ~rm[:, None]) == 0) & (rooms["is_main"].to_numpy()[:, None]
                                                      | procs["ambulatory_ok"].to_numpy()[None, :])
    world = _World(sls, procs, rooms, feasible, surgeons, pref, interaction)
    template = _build_template(params, world, rngs["template"])

    today_day = int(np.datetime64(params.today, "D").astype(int))
    first_day = today_day - params.history_days
    days = np.arange(first_day, today_day + params.horizon_days)
    years = range(params.today.year - params.history_days // 365 - 2, params.today.year + 2)
    holidays = {int(np.datetime64(h, "D").astype(int)) for h in _us_holidays(years)}
    weekday = (days + 3) % 7            # 1970-01-01 was a Thursday
    is_holiday = np.array([d in holidays for d in days], dtype=bool)
    workday = (weekday < 5) & ~is_holiday

    staffing = _staffing(params, rooms, days, workday, rngs["staffing"])
    blocks = _blocks(template, days, workday)
    electives = _electives(params, world, blocks, today_day, rngs)
    cases = _simulate_days(params, world, electives, blocks, staffing, days, workday, today_day, rngs)

    frames = _assemble(params, world, cases, blocks, staffing, rooms, surgeons)
    logger.info("generated hospital seed=%s: %d cases, %d rooms, %d surgeons, %d blocks", params.seed,
                len(frames["cases.csv"]), len(rooms), len(surgeons), len(frames["blocks.csv"]))
    return frames


def _staffing(params: GeneratorParams, rooms: pd.DataFrame, days: np.ndarray, workday: np.ndarray,
              rng: np.random.Generator) -> pd.DataFrame:
    n = len(days)
    r = params.rooms
    minus_one = (rng.random(n) < 0.25) & (r >= 4)
    dip = np.where(rng.random(n) < 0.05, rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1]), 0)
    staffed = np.clip(r - minus_one - dip, 1, r)
    team_delta = rng.choice([-2, -1, 0, 1], size=n, p=[0.03, 0.09, 0.68, 0.20])
    teams = np.clip(staffed + team_delta, 1, staffed + 1)
    pacu_base = max(1, round(0.8 * r))
    pacu = pacu_base + rng.choice([-1, 0, 0, 1], size=n) - np.where(rng.random(n) < 0.06,
                                                                    rng.integers(2, 5, n), 0)
    pacu = np.clip(pacu, 1, None)
    on_call = np.where((r >= 10) & (rng.random(n) < 0.3), 2, 1)
    on_call = np.minimum(on_call, int(rooms["is_main"].sum()))
    return pd.DataFrame({
        "day": days,
        "staffed_rooms": np.where(workday, staffed, on_call).astype(int),
        "anesthesia_teams": np.where(workday, teams, on_call).astype(int),
        "pacu_beds": np.where(workday, pacu, np.minimum(pacu_base, 2 + (on_call > 1))).astype(int),
    })


def _blocks(template: list[list[tuple[int, int, int, int, int]]], days: np.ndarray,
            workday: np.ndarray) -> pd.DataFrame:
    rows = []
    for d, wd, ok in zip(days, (days + 3) % 7, workday):
        if not ok:
            continue
        for r, s, g, a, b in template[int(wd)]:
            rows.append((int(d), r, s, g, a, b))
    return pd.DataFrame(np.array(rows, dtype=np.int64).reshape(-1, 6),
                        columns=["day", "room", "sl", "surgeon", "start", "end"])


def _electives(params: GeneratorParams, world: _World, blocks: pd.DataFrame, today_day: int,
               rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Elective cases booked into blocks, first come first served, with their true parameters."""
    rng = rngs["blocks"]
    surg = world.surgeons
    sls = world.sls
    rooms = world.rooms
    surg_sl = surg["sl_idx"].to_numpy()
    surg_start = np.array([np.datetime64(d, "D").astype(int) for d in surg["start_date"]])
    volume = surg["volume"].to_numpy()
    home = surg["home_site"].to_numpy()
    room_site = rooms["site"].to_numpy()
    turnover = params.turnover_minutes
    ew = world.procs["elective_w"].to_numpy()
    proc_base = world.procs["base_minutes"].to_numpy()
    proc_sl = world.procs["sl_idx"].to_numpy()

    # fill units: one surgeon's share of one block
    units = []   # (block_row, day, room, sl, surgeon, start, end, fill)
    blocks = blocks.sort_values(["day", "room", "start"], kind="stable").reset_index(drop=True)
    for day, grp in blocks.groupby("day", sort=True):
        used = set(int(g) for g in grp["surgeon"] if g >= 0)
        horizon = day >= today_day
        fill_mean = params.horizon_fill_mean if horizon else params.block_fill_mean
        for row in grp.itertuples():
            owner = int(row.surgeon)
            release_p = 0.06 if owner >= 0 else 0.02
            if rng.random() < release_p:
                continue   # released: vacation, conference, no demand
            f = min(1.0, rng.beta(fill_mean * 14, (1 - fill_mean) * 14))
            if owner >= 0:
                units.append((row.Index, day, row.room, row.sl, owner, row.start, row.end, f))
                continue
            pool = [int(p) for p in np.flatnonzero((surg_sl == row.sl) & (surg_start <= day))
                    if int(p) not in used]
            if not pool:
                pool = [int(p) for p in np.flatnonzero((surg_sl == row.sl) & (surg_start <= day))]
            if not pool:
                continue
            w = volume[pool] * np.where(home[pool] == room_site[row.room], 1.6, 1.0)
            two = len(pool) >= 2 and row.end - row.start >= 480 and rng.random() < 0.35
            picks = rng.choice(pool, size=2 if two else 1, replace=False, p=w / w.sum())
            used.update(int(p) for p in picks)
            if two:
                mid = row.start + ((row.end - row.start) // 2 // 15) * 15
                units.append((row.Index, day, row.room, row.sl, int(picks[0]), row.start, mid, f))
                units.append((row.Index, day, row.room, row.sl, int(picks[1]), mid, row.end, f))
            else:
                units.append((row.Index, day, row.room, row.sl, int(picks[0]), row.start, row.end, f))
    if not units:
        return pd.DataFrame()
    u = pd.DataFrame(units, columns=["block", "day", "room", "sl", "surgeon", "start", "end", "fill"])

    # candidates: more than can fit, drawn from the surgeon's own case mix in that room
    sl_min = np.array([proc_base[proc_sl == s].min() for s in range(len(sls))])
    k = np.ceil((u["end"] - u["start"]) / (0.8 * sl_min[u["sl"]] + turnover)).astype(int) + 3
    k = np.minimum(k, 40)
    cu = np.repeat(np.arange(len(u)), k)
    c_room = u["room"].to_numpy()[cu]
    c_surg = u["surgeon"].to_numpy()[cu]
    c_day = u["day"].to_numpy()[cu]
    rc = rngs["candidates"]
    proc = np.empty(len(cu), dtype=int)
    keys = c_surg * len(rooms) + c_room
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        s, r = divmod(int(key), len(rooms))
        w = world.pref[s] * world.feasible[r]
        if w.sum() <= 0:
            w = ew * world.feasible[r] * (proc_sl == surg_sl[s])
        if w.sum() <= 0:
            w = world.feasible[r] * (proc_sl == surg_sl[s]) * 1.0
        proc[idx] = rc.choice(len(w), size=len(idx), p=w / w.sum())
    main_site = rooms["is_main"].to_numpy()[c_room]
    zeros = np.zeros(len(cu), dtype=bool)
    pat = _patients(rngs["patients"], world, proc, main_site, zeros, zeros)
    raw = _patient_terms(None, proc, pat, zeros)
    c_sl = world.procs["sl_idx"].to_numpy()[proc]
    world.patient_center = np.array([raw[c_sl == s].mean() if (c_sl == s).any() else 0.0
                                     for s in range(len(sls))])
    lead_med = 16.0 * np.array([sl.lead_factor for sl in sls])[u["sl"].to_numpy()[cu]]
    lead = 1 + np.floor(np.exp(rc.normal(np.log(lead_med), 0.85)))
    lead = np.minimum(lead, 180).astype(int)
    book_day = c_day - lead
    bwd = (book_day + 3) % 7
    book_day = book_day - np.where(bwd == 5, 1, 0) - np.where(bwd == 6, 2, 0)
    book_min = rc.integers(7 * 60 + 30, 17 * 60 + 30, len(cu))
    booked = _booked_minutes(rc, world, c_surg, proc, pat, zeros, c_day, today_day)

    cand = pd.DataFrame({"unit": cu, "day": c_day, "room": c_room, "surgeon": c_surg, "proc": proc,
                         "book_day": book_day, "book_min": book_min, "booked": booked,
                         "block": u["block"].to_numpy()[cu]})
    for key, val in pat.items():
        cand[key] = val
    # demand: the candidates, in the order they arise, fill the unit up to its fill target (a case
    # that does not fit goes to another list); cand is already grouped by unit in draw order
    unit_arr = cand["unit"].to_numpy()
    booked_arr = cand["booked"].to_numpy()
    u_start = u["start"].to_numpy()
    u_fill = u["fill"].to_numpy()
    u_cap = (u["end"] - u["start"]).to_numpy() * u_fill
    accept = np.zeros(len(cand), dtype=bool)
    bounds = np.flatnonzero(np.diff(unit_arr, prepend=-1, append=-2))
    for a, b in zip(bounds[:-1], bounds[1:]):
        un = unit_arr[a]
        used = 0.0
        n_acc = 0
        cap = u_cap[un]
        for j in range(a, b):
            need = booked_arr[j] + (turnover if n_acc else 0.0)
            # a long first case may take a whole block that its fill target alone would refuse
            if used + need <= cap or (n_acc == 0 and u_fill[un] > 0.5 and booked_arr[j] <= cap / u_fill[un]):
                used += need
                n_acc += 1
                accept[j] = True
    out = cand[accept]
    # the horizon as known at the as-of date: the cases posted since are not there yet
    out = out[~((out["day"] >= today_day) & (out["book_day"] >= today_day))]
    # first come first served: the list runs in booking order, back to back at the booked times
    out = out.sort_values(["unit", "book_day", "book_min"], kind="stable").copy()
    gap = out.groupby("unit").cumcount().to_numpy() > 0
    need = out["booked"].to_numpy() + np.where(gap, turnover, 0.0)
    before = out.assign(need=need).groupby("unit")["need"].cumsum().to_numpy() - out["booked"].to_numpy()
    out["sched"] = (u_start[out["unit"].to_numpy()] + before).astype(int)
    out = out.sort_values(["day", "room", "sched"], kind="stable").reset_index(drop=True)
    out["urgency"] = 0
    return out


def _simulate_days(params: GeneratorParams, world: _World, el: pd.DataFrame, blocks: pd.DataFrame,
                   staffing: pd.DataFrame, days: np.ndarray, workday: np.ndarray, today_day: int,
                   rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Run every history day: cancellations, late starts, turnovers, overtime, add-ons."""
    rooms, surg, procs = world.rooms, world.surgeons, world.procs
    sls = world.sls
    n_rooms = len(rooms)
    is_main = rooms["is_main"].to_numpy()
    open_min = rooms["open_min"].to_numpy()
    close_min = rooms["close_min"].to_numpy()
    cap_mask = rooms["cap_mask"].to_numpy()
    equip_mask = procs["equip_mask"].to_numpy()
    turnover = params.turnover_minutes
    rng = rngs["day"]

    # add-on arrivals (history only)
    addons = _addons(params, world, days, workday, today_day, rngs)
    cases = pd.concat([el, addons], ignore_index=True) if len(addons) else el.copy()
    if cases.empty:
        return cases
    n = len(cases)
    proc = cases["proc"].to_numpy()
    surgeon = cases["surgeon"].to_numpy().copy()
    main_site = is_main[cases["room"].to_numpy()] if "room" in cases else np.ones(n, bool)
    addon = cases["urgency"].to_numpy() > 0
    emergent = cases["urgency"].to_numpy() == 2
    pat = {k: cases[k].to_numpy() for k in ("age", "female", "bmi", "asa", "anesthesia", "admission")}
    day = cases["day"].to_numpy()
    # add-on rooms are chosen below; all add-ons run at the main site
    main_site = np.where(addon, True, main_site)
    log_med = _log_median(world, surgeon, proc, pat, main_site, emergent, day, today_day)
    sigma = _sigma(world, proc, pat["asa"], addon)
    z, mult = _noise(rngs["durations"], world, proc, pat["asa"])
    actual = _duration(log_med, sigma, z, mult)
    cases["sigma"] = sigma
    surg_sl = surg["sl_idx"].to_numpy()
    surg_start = np.array([np.datetime64(x, "D").astype(int) for x in surg["start_date"]])

    # day-of cancellation: logistic in lead time, ASA, admission, service line, surgeon
    rc = rngs["cancel"]
    lead_days = np.maximum(day - cases["book_day"].to_numpy(), 0)
    sl = procs["sl_idx"].to_numpy()[proc]
    eta = (0.8 * np.log1p(lead_days) + 0.65 * (pat["asa"] - 2) + 1.0 * (pat["admission"] == 2)
           + 0.35 * (pat["admission"] == 1) + np.array([x.cancel_effect for x in sls])[sl]
           + surg["cancel_effect"].to_numpy()[surgeon] + 0.45 * (pat["age"] >= 80)
           + 0.35 * (pat["bmi"] >= 40) + 0.2 * ((day + 3) % 7 == 0))
    hist_el = (~addon) & (day < today_day)
    lo, hi = -15.0, 5.0
    target = params.cancel_rate
    for _ in range(60):   # intercept that gives the target mean probability on history electives
        mid = (lo + hi) / 2
        if hist_el.any() and _sigmoid(mid + eta[hist_el]).mean() > target:
            hi = mid
        else:
            lo = mid
    p_cancel = np.where(addon, 0.025, _sigmoid((lo + hi) / 2 + eta))
    cancelled = rc.random(n) < p_cancel
    reason_w = np.column_stack([
        1.0 + 1.2 * (pat["asa"] >= 3) + 1.0 * addon,
        (0.8 + 0.8 * (lead_days > 30)) * (pat["admission"] != 2) * (~addon),
        2.2 * (pat["admission"] == 2) + 0.5 * (pat["admission"] == 1),
        0.45 * np.ones(n),
        0.25 + 0.5 * (procs["equip_mask"].to_numpy()[proc] > 0),
        0.6 * np.ones(n),
    ])
    reason = _choice_rows(rc, reason_w)
    cases["p_cancel"] = p_cancel

    # ---- day by day, room by room
    wheels_in = np.full(n, -1, dtype=int)
    wheels_out = np.full(n, -1, dtype=int)
    status = np.where(day >= today_day, 0, 1)          # 0 booked, 1 completed, 2 cancelled
    reason_txt = np.full(n, "", dtype=object)
    room_arr = cases["room"].to_numpy().copy()
    sched_arr = cases["sched"].to_numpy().copy()
    cx = procs["complexity"].to_numpy()[proc]
    # random pieces drawn up front (vectorised), used in the loop
    turn = np.clip(np.exp(rng.normal(np.log(turnover), 0.3, n)) * (1 + 0.25 * (cx > 0.6))
                   * np.where(main_site, 1.0, 0.8), 12, 150).round()
    booked_arr = cases["booked"].to_numpy()
    ready_arr = cases["ready"].to_numpy() if "ready" in cases else np.zeros(n)
    early_ok = rng.random(n) < 0.7
    otime_go = rng.random(n) < 0.45
    staff = staffing.set_index("day")
    blocks_by_day = {d: g for d, g in blocks.groupby("day")}
    case_order = np.lexsort((sched_arr, room_arr, day))
    sorted_day = day[case_order]
    busy_until: dict[int, int] = {}
    ordered_days = np.sort(np.unique(day[day < today_day]))
    d_to_rng = rng.random((len(days), n_rooms, 5))
    day_index = {int(d): i for i, d in enumerate(days)}
    for d in ordered_days:
        d = int(d)
        lo_i = np.searchsorted(sorted_day, d, "left")
        hi_i = np.searchsorted(sorted_day, d, "right")
        todays = case_order[lo_i:hi_i]
        el_idx = todays[~addon[todays]]
        ad_idx = todays[addon[todays]]
        rr = d_to_rng[day_index[d]]
        staffed = int(staff.at[d, "staffed_rooms"])
        teams = int(staff.at[d, "anesthesia_teams"])
        blk = blocks_by_day.get(d)
        blocked_rooms = sorted(set(blk["room"].tolist())) if blk is not None else []
        load = {r: float(booked_arr[el_idx][room_arr[el_idx] == r].sum()) for r in blocked_rooms}
        if blk is not None:
            open_r = [r for r in range(n_rooms) if r not in blocked_rooms]
            closed = set()
            excess = n_rooms - staffed
            for r in sorted(open_r, reverse=True) + sorted(blocked_rooms, key=lambda r: (load[r], r)):
                if excess <= 0:
                    break
                closed.add(r)
                excess -= 1
            live = [r for r in range(n_rooms) if r not in closed
                    and (r in blocked_rooms or is_main[r])]
        else:
            # weekend or holiday: on-call rooms only, the best-equipped main rooms first
            main_rooms = sorted(np.flatnonzero(is_main), key=lambda r: (-bin(int(cap_mask[r])).count("1"), r))
            live = [int(r) for r in main_rooms[:staffed]]
            closed = set(range(n_rooms)) - set(live)
        short_teams = max(0, staffed - teams)
        free = {r: int(open_min[r]) for r in live}
        had_case: set[int] = set()
        busy_until = {}
        # electives, room by room
        for r in blocked_rooms:
            idx = el_idx[room_arr[el_idx] == r]
            if r in closed:
                status[idx] = 2
                reason_txt[idx] = "no staff"
                continue
            delay = 0
            if rr[r, 0] < params.late_start_prob * (1.3 if (d + 3) % 7 == 0 else 1.0):
                delay = int(round(-math.log(1 - rr[r, 1]) * params.late_start_mean_minutes)) + 1
                if rr[r, 2] < 0.12:
                    delay += int(20 + 55 * rr[r, 3])
            if short_teams > 0 and r in blocked_rooms[-short_teams:]:
                delay += 25 + int(35 * rr[r, 4])    # waiting for an anesthesia team
            t = None
            first = True
            for j in idx:
                if cancelled[j]:
                    status[j] = 2
                    reason_txt[j] = CANCEL_REASONS[reason[j]]
                    continue
                s_j = int(sched_arr[j])
                if first:
                    start = s_j + delay
                else:
                    earliest = s_j - 60 if early_ok[j] else s_j
                    start = max(t + int(turn[j]), earliest)
                    # no elective starts long after closing, nor runs far past the overtime cap
                    late_start = start > close_min[r] + params.overtime_cap_minutes / 2
                    too_long = start + booked_arr[j] > close_min[r] + params.overtime_cap_minutes
                    too_late = start > close_min[r] + params.overtime_cap_minutes
                    if too_late or (late_start and not (otime_go[j] and early_ok[j])) \
                            or (too_long and not otime_go[j]):
                        status[j] = 2
                        reason_txt[j] = "ran out of time"
                        continue
                dur = max(10, int(min(actual[j], 1439 - start)))   # the day ends at midnight
                wheels_in[j] = start
                wheels_out[j] = start + dur
                t = start + dur
                first = False
                busy_until[int(surgeon[j])] = max(busy_until.get(int(surgeon[j]), 0), t)
            if t is not None:
                free[r] = t
                had_case.add(r)
        # add-ons in order of readiness, into the live main room that frees first
        for j in ad_idx[np.argsort(ready_arr[ad_idx], kind="stable")]:
            need = equip_mask[proc[j]]
            ready = int(ready_arr[j])
            # the on-call surgeon of the line who is free first; the duration follows that surgeon
            pool = np.flatnonzero((surg_sl == sl[j]) & (surg_start <= d))
            if len(pool):
                g = int(min(pool, key=lambda p: (busy_until.get(int(p), 0), int(p))))
                one = np.array([j])
                log_med[j] += (_surgeon_terms(world, np.array([g]), proc[one], day[one], today_day)
                               - _surgeon_terms(world, surgeon[one], proc[one], day[one], today_day))[0]
                surgeon[j] = g
                actual[j] = _duration(log_med[one], sigma[one], z[one], mult[one])[0]
            not_before = max(ready, busy_until.get(int(surgeon[j]), 0) + 15 if int(surgeon[j]) in busy_until else 0)

            def start_in(r: int) -> int:
                if r in free:
                    return max(free[r] + (int(turn[j]) if r in had_case else 0), not_before)
                return max(int(open_min[r]) + 30, not_before)   # a team called in

            # a live main room with the equipment; an emergency may call in a closed one
            cands = [r for r in live if is_main[r] and (cap_mask[r] & need) == need]
            if emergent[j] or not cands:
                cands = cands + [r for r in range(n_rooms) if r not in cands and is_main[r]
                                 and (cap_mask[r] & need) == need]
            if not cands:
                cands = [r for r in range(n_rooms) if (cap_mask[r] & need) == need] or list(range(n_rooms))
            r = min(cands, key=lambda r: (start_in(r), r not in live, r))
            start = start_in(r)
            room_arr[j] = r
            sched_arr[j] = min(start, 1439 - 15)
            if cancelled[j] or start > ADDON_LAST_START_MINUTE:
                # too late tonight: the add-on is postponed (booked again as a new case)
                status[j] = 2
                reason_txt[j] = CANCEL_REASONS[reason[j]] if cancelled[j] else "ran out of time"
                continue
            dur = max(10, int(min(actual[j], 1439 - start)))
            wheels_in[j] = start
            wheels_out[j] = start + dur
            free[r] = start + dur
            had_case.add(r)
            busy_until[int(surgeon[j])] = start + dur
    cases["surgeon"] = surgeon
    cases["room"] = room_arr
    cases["sched"] = sched_arr
    cases["wheels_in"] = wheels_in
    cases["wheels_out"] = wheels_out
    cases["status"] = status
    cases["reason"] = reason_txt
    cases["log_med"] = log_med
    if addon.any():   # the on-call surgeon's own estimate, made when the add-on was posted
        cases["booked"] = np.where(addon, _booked_minutes(rngs["addons"], world, surgeon, proc, pat, emergent, day, today_day),
                                   cases["booked"].to_numpy())
    return cases


def _addons(params: GeneratorParams, world: _World, days: np.ndarray, workday: np.ndarray,
            today_day: int, rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Urgent and emergent add-ons of the history (the future ones are not known yet)."""
    rng = rngs["addons"]
    hist = days < today_day
    wd = (days + 3) % 7
    factor = np.select([~workday & (wd >= 5), ~workday, wd == 0, wd == 4], [0.35, 0.4, 1.3, 1.25], 1.0)
    lam = params.addon_rate_per_room * params.rooms * factor * hist
    counts = rng.poisson(lam)
    n = int(counts.sum())
    if n == 0:
        return pd.DataFrame()
    day = np.repeat(days, counts)
    sls = world.sls
    procs = world.procs
    share = np.array([sl.addon_share for sl in sls])
    sl = rng.choice(len(sls), size=n, p=share / share.sum())
    aw = procs["addon_w"].to_numpy()
    proc = np.empty(n, dtype=int)
    proc_sl = procs["sl_idx"].to_numpy()
    for s in range(len(sls)):
        idx = np.flatnonzero(sl == s)
        if len(idx):
            w = aw * (proc_sl == s)
            proc[idx] = rng.choice(len(w), size=len(idx), p=w / w.sum())
    emergent = rng.random(n) < 0.3
    # booked: emergent the same day; urgent the evening before or the same morning
    prev = (~emergent) & (rng.random(n) < 0.5)
    book_min = np.where(emergent, rng.integers(6 * 60, 19 * 60, n),
                        np.where(prev, rng.integers(12 * 60, 20 * 60, n), rng.integers(6 * 60, 12 * 60, n)))
    book_day = day - prev
    ready = np.where(emergent, book_min + rng.integers(30, 120, n),
                     np.where(prev, 7 * 60 + 30 + rng.integers(0, 360, n), book_min + rng.integers(90, 240, n)))
    ready = np.minimum(ready, 21 * 60)
    ones = np.ones(n, dtype=bool)
    pat = _patients(rngs["patients"], world, proc, ones, ones, emergent)
    # surgeon is fixed on the day (on call); a placeholder from the line for now
    surg_sl = world.surgeons["sl_idx"].to_numpy()
    first_of = np.array([np.flatnonzero(surg_sl == s)[0] for s in range(len(sls))])
    out = pd.DataFrame({"day": day, "room": -1, "surgeon": first_of[proc_sl[proc]], "proc": proc,
                        "book_day": book_day, "book_min": book_min, "booked": 0.0, "block": -1,
                        "sched": -1, "urgency": np.where(emergent, 2, 1), "ready": ready})
    for key, val in pat.items():
        out[key] = val
    return out


# internal case fields (one row per case) as they reach _assemble
_CASE_FIELDS: dict[str, Any] = {
    "day": np.int64, "room": np.int64, "sched": np.int64, "book_day": np.int64, "book_min": np.int64,
    "proc": np.int64, "surgeon": np.int64, "status": np.int64, "wheels_in": np.int64, "wheels_out": np.int64,
    "anesthesia": np.int64, "bmi": float, "urgency": np.int64, "reason": object, "booked": float,
    "age": np.int64, "female": bool, "asa": np.int64, "admission": np.int64, "log_med": float,
    "sigma": float, "p_cancel": float,
}


def _assemble(params: GeneratorParams, world: _World, cases: pd.DataFrame, blocks: pd.DataFrame,
              staffing: pd.DataFrame, rooms: pd.DataFrame, surgeons: pd.DataFrame
              ) -> dict[str, pd.DataFrame | dict[str, Any]]:
    procs = world.procs
    if cases.empty:
        cases = pd.DataFrame({k: np.zeros(0, dtype=t) for k, t in _CASE_FIELDS.items()})
    cases = cases.sort_values(["day", "room", "sched", "book_day", "book_min"], kind="stable").reset_index(drop=True)
    n = len(cases)
    width = max(6, len(str(n)))
    case_id = np.array([f"C{i + 1:0{width}d}" for i in range(n)], dtype=object)
    rng = np.random.default_rng(np.random.SeedSequence([params.seed, 99]))
    day = cases["day"].to_numpy().astype("int64")

    def stamp(dd: np.ndarray, minutes: np.ndarray, valid: np.ndarray) -> pd.Series:
        vals = (dd.astype("int64") * 1440 + np.where(valid, minutes, 0).astype("int64")).astype("datetime64[m]")
        s = pd.Series(vals.astype("datetime64[s]"))
        s[~valid] = pd.NaT
        return s

    proc = cases["proc"].to_numpy().astype(int)
    status = cases["status"].to_numpy()
    done = status == 1
    wi = cases["wheels_in"].to_numpy()
    wo = cases["wheels_out"].to_numpy()
    dur = wo - wi
    an = cases["anesthesia"].to_numpy().astype(int)
    pre_med = np.array([22.0, 18.0, 8.0, 5.0])[an]
    post_med = np.array([12.0, 8.0, 5.0, 4.0])[an]
    pre = np.maximum(1, np.minimum(np.round(pre_med * np.exp(rng.normal(0, 0.3, n))), np.floor(0.3 * dur)))
    post = np.maximum(1, np.minimum(np.round(post_med * np.exp(rng.normal(0, 0.3, n))), np.floor(0.2 * dur)))
    room = cases["room"].to_numpy().astype(int)
    has_room = room >= 0
    bmi = cases["bmi"].to_numpy().astype(float)
    bmi = np.where(rng.random(n) < params.bmi_missing_rate, np.nan, bmi)
    urgency = cases["urgency"].to_numpy()
    st_text = np.array(["booked", "completed", "cancelled"], dtype=object)[status]
    reason = cases["reason"].to_numpy()
    reason = np.where(status == 2, reason, None)
    sched = cases["sched"].to_numpy()
    out = pd.DataFrame({
        "case_id": case_id,
        "surgery_date": pd.Series(day.astype("datetime64[D]").astype("datetime64[s]")),
        "status": st_text,
        "service_line": procs["service_line"].to_numpy()[proc],
        "procedure_code": procs["procedure_code"].to_numpy()[proc],
        "procedure_name": procs["procedure_name"].to_numpy()[proc],
        "surgeon_id": surgeons["surgeon_id"].to_numpy()[cases["surgeon"].to_numpy().astype(int)],
        "room_id": np.where(has_room, rooms["room_id"].to_numpy()[np.maximum(room, 0)], None),
        "booked_minutes": cases["booked"].to_numpy().astype(float),
        "booked_at": stamp(cases["book_day"].to_numpy(), cases["book_min"].to_numpy(), np.ones(n, bool)),
        "scheduled_start": stamp(day, sched, sched >= 0),
        "wheels_in": stamp(day, wi, done),
        "wheels_out": stamp(day, wo, done),
        "procedure_start": stamp(day, wi + pre, done),
        "procedure_end": stamp(day, wo - post, done),
        "urgency": np.array(["elective", "urgent", "emergent"], dtype=object)[urgency],
        "cancellation_reason": reason,
        "required_equipment": procs["required_equipment"].to_numpy()[proc],
        "patient_age": cases["age"].to_numpy().astype(int),
        "patient_sex": np.where(cases["female"].to_numpy(), "F", "M"),
        "asa_class": cases["asa"].to_numpy().astype(int),
        "bmi": bmi,
        "anesthesia_type": np.array(ANESTHESIA_TYPES, dtype=object)[an],
        "admission_type": np.array(ADMISSION_TYPES, dtype=object)[cases["admission"].to_numpy().astype(int)],
        "site": np.where(has_room, rooms["site"].to_numpy()[np.maximum(room, 0)], None),
    })
    assert list(out.columns) == list(CASES_COLUMNS)
    truth = pd.DataFrame({
        "case_id": case_id,
        "true_median_minutes": np.round(np.exp(cases["log_med"].to_numpy()), 2),
        "true_sigma": np.round(cases["sigma"].to_numpy(), 4),
        "true_cancel_prob": np.round(cases["p_cancel"].to_numpy(), 5),
    })

    rooms_out = rooms[list(ROOMS_COLUMNS)].copy()
    surgeons_out = surgeons[list(SURGEONS_COLUMNS) + ["name", "home_site"]].copy()
    surgeons_out["start_date"] = pd.to_datetime(pd.Series(surgeons["start_date"])).dt.strftime("%Y-%m-%d")
    b = blocks.sort_values(["day", "room", "start"], kind="stable")
    blocks_out = pd.DataFrame({
        "date": pd.Series(b["day"].to_numpy().astype("int64").astype("datetime64[D]").astype("datetime64[s]")),
        "room_id": rooms["room_id"].to_numpy()[b["room"].to_numpy().astype(int)],
        "service_line": [world.sls[s].name for s in b["sl"]],
        "surgeon_id": np.where(b["surgeon"].to_numpy() >= 0,
                               surgeons["surgeon_id"].to_numpy()[np.maximum(b["surgeon"].to_numpy(), 0)], None),
        "start_time": [_min_to_hhmm(int(x)) for x in b["start"]],
        "end_time": [_min_to_hhmm(int(x)) for x in b["end"]],
    })
    assert list(blocks_out.columns) == list(BLOCKS_COLUMNS)
    staffing_out = pd.DataFrame({
        "date": pd.Series(staffing["day"].to_numpy().astype("int64").astype("datetime64[D]").astype("datetime64[s]")),
        "staffed_rooms": staffing["staffed_rooms"].to_numpy(),
        "anesthesia_teams": staffing["anesthesia_teams"].to_numpy(),
        "pacu_beds": staffing["pacu_beds"].to_numpy(),
    })
    assert list(staffing_out.columns) == list(STAFFING_COLUMNS)
    settings = {
        "hospital_name": params.hospital_name,
        "turnover_minutes": _whole(params.turnover_minutes),
        "pacu_minutes": _whole(params.pacu_minutes),
        "prime_time": params.prime_time,
        "overtime_cap_minutes": _whole(params.overtime_cap_minutes),
        "as_of": params.today.isoformat(),
        "seed": params.seed,
    }
    return {
        "cases.csv": out,
        "rooms.csv": rooms_out,
        "surgeons.csv": surgeons_out,
        "blocks.csv": blocks_out,
        "staffing.csv": staffing_out,
        "truth.csv": truth,
        SETTINGS_FILE: settings,
    }


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
_KINDS = {
    "cases.csv": CASES_COLUMNS,
    "rooms.csv": ROOMS_COLUMNS,
    "surgeons.csv": SURGEONS_COLUMNS,
    "blocks.csv": BLOCKS_COLUMNS,
    "staffing.csv": STAFFING_COLUMNS,
    "truth.csv": None,
}


def write_hospital(out_dir: str | Path, params: GeneratorParams | None = None) -> dict[str, int]:
    """Generate the hospital and write it to ``out_dir`` whole-or-nothing.

    Returns the number of data rows per CSV file (and 1 for settings.toml).
    """
    params = params or GeneratorParams()
    frames = generate_hospital(params)
    counts: dict[str, int] = {}
    atomic_write_folder(out_dir, lambda tmp: counts.update(write_frames(frames, tmp)))
    logger.info("wrote hospital to %s: %s", out_dir, counts)
    return counts


def write_frames(frames: dict[str, pd.DataFrame | dict[str, Any]], folder: Path) -> dict[str, int]:
    """Write generated frames (as :func:`generate_hospital` returns them) into an existing folder;
    returns the data rows per file. Not atomic by itself: callers write into a temp folder."""
    import tomli_w

    counts: dict[str, int] = {}
    for name, kinds in _KINDS.items():
        df = frames[name]
        assert isinstance(df, pd.DataFrame)
        write_csv(df, folder / name, kinds)
        counts[name] = len(df)
    (folder / SETTINGS_FILE).write_bytes(tomli_w.dumps(frames[SETTINGS_FILE]).encode("utf-8"))
    counts[SETTINGS_FILE] = 1
    return counts

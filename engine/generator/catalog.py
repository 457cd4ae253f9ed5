"""The catalog: service lines and their procedures (room time medians in minutes, wheels-in to wheels-
out), see data/GENERATOR.md."""
from __future__ import annotations

from dataclasses import dataclass, field


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

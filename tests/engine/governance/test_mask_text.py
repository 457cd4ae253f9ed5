from __future__ import annotations

import pandas as pd

from engine.governance import User, mask_reasons_for_role, mask_text_for_role


def test_reasons_lose_patient_attributes_for_non_clinical_roles():
    text = "+25 min: ASA 4; +19 min: patient age 79; -5 min: BMI 41; +4 min: admission type: inpatient"
    masked = mask_text_for_role(text, User("l", "leadership"))
    for leak in ("ASA 4", "age 79", "BMI 41", "inpatient"):
        assert leak not in masked
    assert masked.count("a patient factor") == 4 and "+25 min" in masked
    assert mask_text_for_role(text, User("c", "coordinator")) == text
    df = pd.DataFrame({"case_id": ["C1"], "reason_1": [text], "reasons": [text], "p50": [90.0]})
    out = mask_reasons_for_role(df, User("v", "viewer"))
    assert "ASA 4" not in out["reason_1"].iloc[0] and "ASA 4" not in out["reasons"].iloc[0]
    assert out["p50"].iloc[0] == 90.0

//! The clinical vocabulary of the demo clinic: problems (SNOMED CT), drugs
//! (RxNorm), tests and vital signs (LOINC, UCUM), allergens and reactions.

/// A problem a patient can have; chronic ones drive the visits, drugs and labs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    Diabetes,
    Hypertension,
    Ckd,
    AtrialFibrillation,
    Hyperlipidemia,
    Uri,
    Uti,
    AnkleSprain,
}

impl Problem {
    pub fn snomed(self) -> (&'static str, &'static str) {
        match self {
            Problem::Diabetes => ("44054006", "Diabetes mellitus type 2"),
            Problem::Hypertension => ("59621000", "Essential hypertension"),
            Problem::Ckd => ("433144002", "Chronic kidney disease stage 3"),
            Problem::AtrialFibrillation => ("49436004", "Atrial fibrillation"),
            Problem::Hyperlipidemia => ("55822004", "Hyperlipidemia"),
            Problem::Uri => ("54150009", "Upper respiratory infection"),
            Problem::Uti => ("68566005", "Urinary tract infectious disease"),
            Problem::AnkleSprain => ("44465007", "Sprain of ankle"),
        }
    }

    /// How the problem reads in a note ("type 2 diabetes").
    pub fn short(self) -> &'static str {
        match self {
            Problem::Diabetes => "type 2 diabetes",
            Problem::Hypertension => "hypertension",
            Problem::Ckd => "CKD stage 3",
            Problem::AtrialFibrillation => "atrial fibrillation on anticoagulation",
            Problem::Hyperlipidemia => "hyperlipidemia",
            Problem::Uri => "upper respiratory infection",
            Problem::Uti => "urinary tract infection",
            Problem::AnkleSprain => "ankle sprain",
        }
    }

    pub fn chronic(self) -> bool {
        !matches!(self, Problem::Uri | Problem::Uti | Problem::AnkleSprain)
    }
}

/// A drug product with the sig the clinic writes for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drug {
    pub rxnorm: &'static str,
    pub display: &'static str,
    /// `dosageInstruction.text`, the way a prescriber writes it.
    pub sig: &'static str,
    /// How a patient names it in a message.
    pub common: &'static str,
}

pub(crate) const METFORMIN: Drug = Drug {
    rxnorm: "861007",
    display: "metformin hydrochloride 500 MG Oral Tablet",
    sig: "metformin 500 mg PO BID with meals",
    common: "metformin 500 mg",
};
pub(crate) const METFORMIN_HIGH: Drug = Drug {
    rxnorm: "861007",
    display: "metformin hydrochloride 500 MG Oral Tablet",
    sig: "metformin 1000 mg (2 tablets) PO BID with meals",
    common: "metformin",
};
pub(crate) const LISINOPRIL: Drug = Drug {
    rxnorm: "314076",
    display: "lisinopril 10 MG Oral Tablet",
    sig: "lisinopril 10 mg PO daily",
    common: "lisinopril 10 mg",
};
pub(crate) const AMLODIPINE: Drug = Drug {
    rxnorm: "197361",
    display: "amlodipine 5 MG Oral Tablet",
    sig: "amlodipine 5 mg PO daily",
    common: "amlodipine",
};
pub(crate) const HYDROCHLOROTHIAZIDE: Drug = Drug {
    rxnorm: "310798",
    display: "hydrochlorothiazide 25 MG Oral Tablet",
    sig: "hydrochlorothiazide 25 mg PO every morning",
    common: "hydrochlorothiazide",
};
pub(crate) const FUROSEMIDE: Drug = Drug {
    rxnorm: "310429",
    display: "furosemide 20 MG Oral Tablet",
    sig: "furosemide 20 mg PO daily",
    common: "furosemide (water pill)",
};
pub(crate) const WARFARIN: Drug = Drug {
    rxnorm: "855332",
    display: "warfarin sodium 5 MG Oral Tablet",
    sig: "warfarin 5 mg PO daily at 5 pm, adjust to INR 2-3",
    common: "warfarin",
};
pub(crate) const ATORVASTATIN: Drug = Drug {
    rxnorm: "617310",
    display: "atorvastatin 20 MG Oral Tablet",
    sig: "atorvastatin 20 mg PO nightly",
    common: "atorvastatin",
};
/// Basal insulin started when metformin is not enough; its dose is titrated
/// on finger-stick readings (see `results`).
pub(crate) const INSULIN_GLARGINE: Drug = Drug {
    rxnorm: "274783",
    display: "insulin glargine 100 UNT/ML Injectable Solution",
    sig: "insulin glargine 10 units SC at bedtime; increase by 2 units every 3 days until fasting glucose 80-130 mg/dL",
    common: "insulin (Lantus)",
};
pub(crate) const AMOXICILLIN: Drug = Drug {
    rxnorm: "308192",
    display: "amoxicillin 500 MG Oral Tablet",
    sig: "amoxicillin 500 mg PO TID x 10 days",
    common: "amoxicillin",
};
pub(crate) const AZITHROMYCIN: Drug = Drug {
    rxnorm: "248656",
    display: "azithromycin 250 MG Oral Tablet",
    sig: "azithromycin 500 mg PO day 1, then 250 mg PO daily days 2-5",
    common: "azithromycin",
};
pub(crate) const TMP_SMX: Drug = Drug {
    rxnorm: "198335",
    display: "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet",
    sig: "sulfamethoxazole-trimethoprim 800/160 mg PO BID x 3 days",
    common: "Bactrim",
};
pub(crate) const CEPHALEXIN: Drug = Drug {
    rxnorm: "309114",
    display: "cephalexin 500 MG Oral Capsule",
    sig: "cephalexin 500 mg PO BID x 7 days",
    common: "cephalexin",
};
pub(crate) const IBUPROFEN: Drug = Drug {
    rxnorm: "310965",
    display: "ibuprofen 200 MG Oral Tablet",
    sig: "ibuprofen 400 mg (2 tablets) PO q6h PRN pain, with food",
    common: "ibuprofen",
};
pub(crate) const ACETAMINOPHEN: Drug = Drug {
    rxnorm: "313782",
    display: "acetaminophen 325 MG Oral Tablet",
    sig: "acetaminophen 650 mg (2 tablets) PO q6h PRN pain or fever, max 3 g/day",
    common: "Tylenol",
};

/// A numeric test or vital sign with its normal range and critical limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measure {
    pub loinc: &'static str,
    pub display: &'static str,
    pub unit: &'static str,
    pub ucum: &'static str,
    pub decimals: u8,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub critical_low: Option<f64>,
    pub critical_high: Option<f64>,
    /// Name in notes and messages ("HbA1c").
    pub short: &'static str,
}

impl Measure {
    /// H/L against the normal range, HH/LL past the critical limits.
    pub fn interpret(&self, value: f64) -> &'static str {
        if self.critical_low.is_some_and(|c| value < c) {
            "LL"
        } else if self.critical_high.is_some_and(|c| value > c) {
            "HH"
        } else if self.low.is_some_and(|l| value < l) {
            "L"
        } else if self.high.is_some_and(|h| value > h) {
            "H"
        } else {
            "N"
        }
    }

    /// The same measure with an age-specific normal range and critical limits.
    pub fn with_limits(
        self,
        critical_low: f64,
        low: f64,
        high: f64,
        critical_high: f64,
    ) -> Measure {
        Measure {
            low: Some(low),
            high: Some(high),
            critical_low: Some(critical_low),
            critical_high: Some(critical_high),
            ..self
        }
    }
}

#[allow(clippy::too_many_arguments)]
const fn lab(
    loinc: &'static str,
    display: &'static str,
    short: &'static str,
    unit: &'static str,
    ucum: &'static str,
    decimals: u8,
    range: (Option<f64>, Option<f64>),
    critical: (Option<f64>, Option<f64>),
) -> Measure {
    Measure {
        loinc,
        display,
        unit,
        ucum,
        decimals,
        low: range.0,
        high: range.1,
        critical_low: critical.0,
        critical_high: critical.1,
        short,
    }
}

pub(crate) const HBA1C: Measure = lab(
    "4548-4",
    "Hemoglobin A1c/Hemoglobin.total in Blood",
    "HbA1c",
    "%",
    "%",
    1,
    (Some(4.0), Some(5.6)),
    (None, None),
);
pub(crate) const GLUCOSE: Measure = lab(
    "2345-7",
    "Glucose [Mass/volume] in Serum or Plasma",
    "glucose",
    "mg/dL",
    "mg/dL",
    0,
    (Some(70.0), Some(99.0)),
    (Some(50.0), Some(400.0)),
);
pub(crate) const CREATININE: Measure = lab(
    "2160-0",
    "Creatinine [Mass/volume] in Serum or Plasma",
    "creatinine",
    "mg/dL",
    "mg/dL",
    2,
    (Some(0.6), Some(1.3)),
    (None, Some(4.0)),
);
pub(crate) const EGFR: Measure = lab(
    "62238-1",
    "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)",
    "eGFR",
    "mL/min/1.73m2",
    "mL/min/{1.73_m2}",
    0,
    (Some(60.0), None),
    (Some(15.0), None),
);
pub(crate) const POTASSIUM: Measure = lab(
    "2823-3",
    "Potassium [Moles/volume] in Serum or Plasma",
    "potassium",
    "mmol/L",
    "mmol/L",
    1,
    (Some(3.5), Some(5.1)),
    (Some(2.8), Some(6.0)),
);
pub(crate) const INR: Measure = lab(
    "6301-6",
    "INR in Platelet poor plasma by Coagulation assay",
    "INR",
    "INR",
    "{INR}",
    2,
    (Some(0.8), Some(1.2)),
    (None, Some(4.5)),
);
pub(crate) const LDL: Measure = lab(
    "18262-6",
    "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
    "LDL cholesterol",
    "mg/dL",
    "mg/dL",
    0,
    (None, Some(99.0)),
    (None, None),
);
pub(crate) const WBC: Measure = lab(
    "6690-2",
    "Leukocytes [#/volume] in Blood by Automated count",
    "WBC",
    "10*3/uL",
    "10*3/uL",
    1,
    (Some(4.5), Some(11.0)),
    (Some(2.0), Some(30.0)),
);

/// Glucose as the regional hospital laboratory reports it: the same test
/// code, in mmol/L (mg/dL divided by 18), limits converted.
pub(crate) const GLUCOSE_MMOL: Measure = lab(
    "2345-7",
    "Glucose [Mass/volume] in Serum or Plasma",
    "glucose",
    "mmol/L",
    "mmol/L",
    1,
    (Some(3.9), Some(5.5)),
    (Some(2.8), Some(22.2)),
);
/// Finger-stick glucose from a meter, four times a day when insulin is
/// being adjusted: a test of its own (capillary blood), flagged against the
/// targets for people with diabetes.
pub(crate) const GLUCOSE_POC: Measure = lab(
    "41653-7",
    "Glucose [Mass/volume] in Capillary blood by Glucometer",
    "fingerstick glucose",
    "mg/dL",
    "mg/dL",
    0,
    (Some(70.0), Some(180.0)),
    (Some(50.0), Some(400.0)),
);
/// C-reactive protein: below the assay's limit it is reported as `<0.3`.
pub(crate) const CRP: Measure = lab(
    "1988-5",
    "C reactive protein [Mass/volume] in Serum or Plasma",
    "CRP",
    "mg/dL",
    "mg/dL",
    1,
    (None, Some(0.9)),
    (None, None),
);
pub(crate) const CRP_DETECTION_LIMIT: f64 = 0.3;
/// Cardiac troponin I: reported as `<0.01` below the assay's limit.
pub(crate) const TROPONIN: Measure = lab(
    "10839-9",
    "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
    "troponin I",
    "ng/mL",
    "ng/mL",
    2,
    (None, Some(0.04)),
    (None, None),
);
pub(crate) const TROPONIN_DETECTION_LIMIT: f64 = 0.01;
/// eGFR above this is reported as `>90`.
pub(crate) const EGFR_REPORTED_UP_TO: f64 = 90.0;
/// Urine albumin to creatinine ratio: yearly in diabetes, and before insulin.
pub(crate) const UACR: Measure = lab(
    "9318-7",
    "Albumin/Creatinine [Mass Ratio] in Urine",
    "urine albumin/creatinine",
    "mg/g",
    "mg/g{creat}",
    0,
    (None, Some(29.0)),
    (None, None),
);
/// Tests drawn once, elsewhere, for the stale critical results.
pub(crate) const SODIUM: Measure = lab(
    "2951-2",
    "Sodium [Moles/volume] in Serum or Plasma",
    "sodium",
    "mmol/L",
    "mmol/L",
    0,
    (Some(135.0), Some(145.0)),
    (Some(120.0), Some(160.0)),
);
pub(crate) const HEMOGLOBIN: Measure = lab(
    "718-7",
    "Hemoglobin [Mass/volume] in Blood",
    "hemoglobin",
    "g/dL",
    "g/dL",
    1,
    (Some(12.0), Some(17.5)),
    (Some(7.0), Some(20.0)),
);

/// Urine nitrite: a qualitative test, flagged `A` when positive.
pub(crate) const URINE_NITRITE: (&str, &str) =
    ("5802-4", "Nitrite [Presence] in Urine by Test strip");
pub(crate) const BMP_PANEL: (&str, &str) = ("51990-0", "Basic metabolic panel - Blood");

pub(crate) const HEART_RATE: Measure = lab(
    "8867-4",
    "Heart rate",
    "HR",
    "/min",
    "/min",
    0,
    (Some(60.0), Some(100.0)),
    (Some(40.0), Some(150.0)),
);
pub(crate) const RESP_RATE: Measure = lab(
    "9279-1",
    "Respiratory rate",
    "RR",
    "/min",
    "/min",
    0,
    (Some(12.0), Some(20.0)),
    (Some(8.0), Some(40.0)),
);
pub(crate) const TEMPERATURE: Measure = lab(
    "8310-5",
    "Body temperature",
    "Temp",
    "°C",
    "Cel",
    1,
    (Some(36.1), Some(37.8)),
    (Some(35.0), Some(40.5)),
);
/// Temperature as some devices and the emergency department record it.
pub(crate) const TEMPERATURE_F: Measure = lab(
    "8310-5",
    "Body temperature",
    "Temp",
    "°F",
    "[degF]",
    1,
    (Some(97.0), Some(100.0)),
    (Some(95.0), Some(104.9)),
);

pub(crate) fn fahrenheit(celsius: f64) -> f64 {
    celsius * 9.0 / 5.0 + 32.0
}

/// Weight in pounds, as the scale at the front desk shows it.
pub(crate) const WEIGHT_LB: Measure = lab(
    "29463-7",
    "Body weight",
    "Weight",
    "lb",
    "[lb_av]",
    1,
    (None, None),
    (None, None),
);
pub(crate) const POUNDS_PER_KG: f64 = 2.204_622_6;

pub(crate) const WEIGHT: Measure = lab(
    "29463-7",
    "Body weight",
    "Weight",
    "kg",
    "kg",
    1,
    (None, None),
    (None, None),
);
pub(crate) const SPO2: Measure = lab(
    "59408-5",
    "Oxygen saturation in Arterial blood by Pulse oximetry",
    "SpO2",
    "%",
    "%",
    0,
    (Some(95.0), Some(100.0)),
    (Some(88.0), None),
);
pub(crate) const SPO2_ALT: (&str, &str) = ("2708-6", "Oxygen saturation in Arterial blood");
pub(crate) const BP_PANEL: (&str, &str) =
    ("85354-9", "Blood pressure panel with all children optional");
pub(crate) const SYSTOLIC: Measure = lab(
    "8480-6",
    "Systolic blood pressure",
    "systolic",
    "mmHg",
    "mm[Hg]",
    0,
    (Some(90.0), Some(129.0)),
    (Some(70.0), Some(180.0)),
);
pub(crate) const DIASTOLIC: Measure = lab(
    "8462-4",
    "Diastolic blood pressure",
    "diastolic",
    "mmHg",
    "mm[Hg]",
    0,
    (Some(60.0), Some(80.0)),
    (Some(40.0), Some(120.0)),
);

/// Age-appropriate normal ranges for heart and breathing rates.
pub(crate) fn heart_rate_for(age: i64) -> Measure {
    match age {
        0 => HEART_RATE.with_limits(80.0, 100.0, 160.0, 200.0),
        1..=5 => HEART_RATE.with_limits(60.0, 80.0, 140.0, 180.0),
        6..=12 => HEART_RATE.with_limits(50.0, 70.0, 120.0, 160.0),
        _ => HEART_RATE,
    }
}

/// Children run lower pressures than adults.
pub(crate) fn blood_pressure_for(age: i64) -> (Measure, Measure) {
    if age < 13 {
        (
            SYSTOLIC.with_limits(65.0, 85.0, 120.0, 160.0),
            DIASTOLIC.with_limits(35.0, 45.0, 80.0, 100.0),
        )
    } else {
        (SYSTOLIC, DIASTOLIC)
    }
}

pub(crate) fn resp_rate_for(age: i64) -> Measure {
    match age {
        0 => RESP_RATE.with_limits(20.0, 30.0, 60.0, 70.0),
        1..=5 => RESP_RATE.with_limits(15.0, 20.0, 30.0, 50.0),
        6..=12 => RESP_RATE.with_limits(12.0, 18.0, 25.0, 40.0),
        _ => RESP_RATE,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllergyCategory {
    Medication,
    Food,
    Environment,
}

impl AllergyCategory {
    pub fn code(self) -> &'static str {
        match self {
            AllergyCategory::Medication => "medication",
            AllergyCategory::Food => "food",
            AllergyCategory::Environment => "environment",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Allergen {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
    pub category: AllergyCategory,
    /// The reactions this allergen is known for, as SNOMED CT findings.
    pub reactions: &'static [(&'static str, &'static str)],
}

const URTICARIA: (&str, &str) = ("126485001", "Urticaria");
const ANAPHYLAXIS: (&str, &str) = ("39579001", "Anaphylaxis");
const RASH: (&str, &str) = ("271807003", "Eruption of skin");
const NAUSEA: (&str, &str) = ("422587007", "Nausea");
const ANGIOEDEMA: (&str, &str) = ("41291007", "Angioedema");
const WHEEZING: (&str, &str) = ("56018004", "Wheezing");
const ITCHING: (&str, &str) = ("418290006", "Itching");
const VOMITING: (&str, &str) = ("422400008", "Vomiting");

const SNOMED: &str = crate::fhir::codes::SNOMED;
const RXNORM: &str = crate::fhir::codes::RXNORM;

pub(crate) const PENICILLIN: Allergen = Allergen {
    system: SNOMED,
    code: "764146007",
    display: "Penicillin",
    category: AllergyCategory::Medication,
    reactions: &[URTICARIA, RASH, ANAPHYLAXIS],
};
pub(crate) const SULFAMETHOXAZOLE: Allergen = Allergen {
    system: RXNORM,
    code: "10831",
    display: "Sulfamethoxazole / trimethoprim",
    category: AllergyCategory::Medication,
    reactions: &[RASH, ITCHING],
};

pub(crate) const ALLERGENS: &[Allergen] = &[
    PENICILLIN,
    SULFAMETHOXAZOLE,
    Allergen {
        system: RXNORM,
        code: "2670",
        display: "Codeine",
        category: AllergyCategory::Medication,
        reactions: &[NAUSEA, VOMITING, ITCHING],
    },
    Allergen {
        system: RXNORM,
        code: "1191",
        display: "Aspirin",
        category: AllergyCategory::Medication,
        reactions: &[URTICARIA, WHEEZING, ANGIOEDEMA],
    },
    Allergen {
        system: SNOMED,
        code: "762952008",
        display: "Peanut",
        category: AllergyCategory::Food,
        reactions: &[URTICARIA, ANGIOEDEMA, ANAPHYLAXIS],
    },
    Allergen {
        system: SNOMED,
        code: "102263004",
        display: "Eggs (edible)",
        category: AllergyCategory::Food,
        reactions: &[URTICARIA, VOMITING, ANAPHYLAXIS],
    },
    Allergen {
        system: SNOMED,
        code: "111088007",
        display: "Latex",
        category: AllergyCategory::Environment,
        reactions: &[RASH, ITCHING, URTICARIA],
    },
    Allergen {
        system: SNOMED,
        code: "288328004",
        display: "Bee venom",
        category: AllergyCategory::Environment,
        reactions: &[URTICARIA, ANGIOEDEMA, ANAPHYLAXIS],
    },
];

pub(crate) fn is_anaphylaxis(code: &str) -> bool {
    code == ANAPHYLAXIS.0
}

/// Reactions that make any further exposure dangerous.
pub(crate) fn threatens_airway(code: &str) -> bool {
    code == ANGIOEDEMA.0 || code == WHEEZING.0
}

//! Units of measure: UCUM codes shown the way clinicians write them, and
//! conversions between the common lab and vital-sign units so a trend never
//! mixes two units on one axis.
//!
//! Conversions are exact factors within one kind of quantity (mass, length,
//! mass or molar concentration, temperature), plus mass ↔ molar
//! concentration for analytes whose molar mass is fixed and known by their
//! LOINC code. Anything else is not converted: the caller splits the series.

/// A UCUM code (or a free-text unit) as a clinician reads it.
pub fn human(unit: &str) -> String {
    let u = unit.trim();
    if let Some(known) = KNOWN.iter().find(|(code, _)| *code == u) {
        return known.1.to_string();
    }
    // Annotations `{beats}` read as their text; `10*3` as 10³; `u` as µ
    // where it is a prefix (`umol/L`, `ug/L`).
    let mut out = String::new();
    let mut rest = u;
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            let Some(end) = rest.find('}') else {
                out.push_str(rest);
                break;
            };
            out.push_str(&rest[1..end].replace('_', " "));
            rest = &rest[end + 1..];
            continue;
        }
        if let Some(exp) = rest
            .strip_prefix("10*")
            .or_else(|| rest.strip_prefix("10^"))
        {
            let digits: String = exp.chars().take_while(|c| c.is_ascii_digit()).collect();
            out.push_str("10");
            out.extend(digits.chars().map(superscript));
            rest = &exp[digits.len()..];
            continue;
        }
        let at_unit_start = out.is_empty() || out.ends_with('/') || out.ends_with('.');
        if c == 'u' && at_unit_start && rest[1..].starts_with(['g', 'm', 'L', 'I', 'U', '[']) {
            out.push('µ');
        } else if c == '[' || c == ']' {
            // `[IU]`, `[pH]`: brackets are UCUM syntax, not part of the name.
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.replace("m2", "m²").replace("_i", "").replace("_av", "")
}

fn superscript(d: char) -> char {
    match d {
        '0' => '⁰',
        '1' => '¹',
        '2' => '²',
        '3' => '³',
        '4' => '⁴',
        '5' => '⁵',
        '6' => '⁶',
        '7' => '⁷',
        '8' => '⁸',
        '9' => '⁹',
        other => other,
    }
}

/// Codes whose reading is not a mechanical rewrite.
const KNOWN: &[(&str, &str)] = &[
    ("Cel", "°C"),
    ("[degF]", "°F"),
    ("mm[Hg]", "mmHg"),
    ("[lb_av]", "lb"),
    ("[oz_av]", "oz"),
    ("[in_i]", "in"),
    ("[ft_i]", "ft"),
    ("kg/m2", "kg/m²"),
    ("mL/min/{1.73_m2}", "mL/min/1.73m²"),
    ("{INR}", "INR"),
    ("1", ""),
    ("meq/L", "mEq/L"),
    ("[pH]", "pH"),
    ("/[HPF]", "/HPF"),
    ("/[LPF]", "/LPF"),
];

/// What kind of quantity a unit measures; conversion stays within a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mass,
    Length,
    MassConcentration,
    MolarConcentration,
    Temperature,
}

/// Factor to the kind's base unit (kg, m, g/L, mol/L).
fn factor(code: &str) -> Option<(Kind, f64)> {
    use Kind::*;
    Some(match code {
        "kg" => (Mass, 1.0),
        "g" => (Mass, 1e-3),
        "[lb_av]" | "lb" => (Mass, 0.453_592_37),
        "[oz_av]" | "oz" => (Mass, 0.028_349_523_125),
        "m" => (Length, 1.0),
        "cm" => (Length, 1e-2),
        "mm" => (Length, 1e-3),
        "[in_i]" | "in" => (Length, 0.0254),
        "[ft_i]" | "ft" => (Length, 0.3048),
        "g/L" => (MassConcentration, 1.0),
        "g/dL" => (MassConcentration, 10.0),
        "mg/dL" => (MassConcentration, 1e-2),
        "mg/L" | "ug/mL" => (MassConcentration, 1e-3),
        "ug/dL" => (MassConcentration, 1e-5),
        "ug/L" | "ng/mL" => (MassConcentration, 1e-6),
        "ng/dL" => (MassConcentration, 1e-8),
        "ng/L" | "pg/mL" => (MassConcentration, 1e-9),
        "mol/L" => (MolarConcentration, 1.0),
        "mmol/L" => (MolarConcentration, 1e-3),
        "umol/L" => (MolarConcentration, 1e-6),
        "nmol/L" => (MolarConcentration, 1e-9),
        "pmol/L" => (MolarConcentration, 1e-12),
        "Cel" | "[degF]" => (Temperature, 1.0),
        _ => return None,
    })
}

/// Molar mass (g/mol) of analytes reported in both mass and molar units,
/// by LOINC code (the mass and the molar code of each).
fn molar_mass(loinc: &str) -> Option<f64> {
    Some(match loinc {
        // Glucose (serum/plasma, capillary by meter, blood).
        "2345-7" | "2339-0" | "41653-7" | "15074-8" | "14749-6" | "14743-9" => 180.156,
        // Creatinine.
        "2160-0" | "38483-4" | "14682-9" => 113.12,
        // Cholesterol: total, LDL, HDL.
        "2093-3" | "14647-2" | "18262-6" | "13457-7" | "2089-1" | "22748-8" | "2085-9"
        | "14646-4" => 386.65,
        // Triglycerides.
        "2571-8" | "14927-8" => 885.7,
        // Urea nitrogen (as N₂).
        "3094-0" | "6299-2" | "14937-7" => 28.014,
        // Calcium.
        "17861-6" | "2000-8" => 40.078,
        _ => return None,
    })
}

/// Monovalent ions: mEq/L and mmol/L are the same number.
fn monovalent(loinc: &str) -> bool {
    // Sodium, potassium, chloride, bicarbonate / total CO₂.
    matches!(
        loinc,
        "2951-2" | "2947-0" | "2823-3" | "6298-4" | "2075-0" | "2069-3" | "1963-8" | "2028-9"
    )
}

fn base(code: &str, loinc: Option<&str>) -> Option<(Kind, f64)> {
    let code = code.trim();
    if matches!(code, "meq/L" | "mEq/L") && loinc.is_some_and(monovalent) {
        return Some((Kind::MolarConcentration, 1e-3));
    }
    factor(code)
}

/// `value` in unit `from` expressed in unit `to`, for the test with LOINC
/// code `loinc`; `None` when the two cannot be converted exactly.
pub fn convert(value: f64, from: &str, to: &str, loinc: Option<&str>) -> Option<f64> {
    if from.trim() == to.trim() {
        return Some(value);
    }
    let (fk, ff) = base(from, loinc)?;
    let (tk, tf) = base(to, loinc)?;
    match (fk, tk) {
        (Kind::Temperature, Kind::Temperature) => Some(match from.trim() {
            "Cel" => value * 9.0 / 5.0 + 32.0,
            _ => (value - 32.0) * 5.0 / 9.0,
        }),
        (a, b) if a == b => Some(value * ff / tf),
        (Kind::MassConcentration, Kind::MolarConcentration) => {
            Some(value * ff / molar_mass(loinc?)? / tf)
        }
        (Kind::MolarConcentration, Kind::MassConcentration) => {
            Some(value * ff * molar_mass(loinc?)? / tf)
        }
        _ => None,
    }
}

/// Whether two units can be put on one axis for this test.
pub fn compatible(a: &str, b: &str, loinc: Option<&str>) -> bool {
    convert(1.0, a, b, loinc).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_as_clinicians_write_them() {
        for (code, shown) in [
            ("Cel", "°C"),
            ("[degF]", "°F"),
            ("mm[Hg]", "mmHg"),
            ("/min", "/min"),
            ("{beats}/min", "beats/min"),
            ("kg/m2", "kg/m²"),
            ("umol/L", "µmol/L"),
            ("ug/L", "µg/L"),
            ("10*3/uL", "10³/µL"),
            ("10*9/L", "10⁹/L"),
            ("mL/min/{1.73_m2}", "mL/min/1.73m²"),
            ("[lb_av]", "lb"),
            ("m[IU]/L", "mIU/L"),
            ("mg/dL", "mg/dL"),
            ("mmol/L", "mmol/L"),
            ("%", "%"),
            ("", ""),
        ] {
            assert_eq!(human(code), shown, "{code}");
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6 * b.abs().max(1.0))
    }

    proptest::proptest! {
        #[test]
        fn any_unit_text_reads_without_panicking(u in "\\PC{0,20}") {
            let _ = human(&u);
        }
    }

    #[test]
    fn conversions_keep_the_quantity() {
        assert!(close(convert(37.0, "Cel", "[degF]", None), 98.6));
        assert!(close(convert(98.6, "[degF]", "Cel", None), 37.0));
        assert!(close(convert(154.0, "[lb_av]", "kg", None), 69.853_225));
        assert!(close(convert(1.2, "g/dL", "g/L", None), 12.0));
        assert!(close(convert(88.4, "umol/L", "mmol/L", None), 0.0884));
        // Glucose 90 mg/dL is 4.996 mmol/L; creatinine 1 mg/dL is 88.4 µmol/L.
        assert!(close(
            convert(90.0, "mg/dL", "mmol/L", Some("2345-7")),
            4.995_670
        ));
        assert!(close(
            convert(1.0, "mg/dL", "umol/L", Some("2160-0")),
            88.401_697
        ));
        assert!(close(convert(4.1, "meq/L", "mmol/L", Some("2823-3")), 4.1));
    }

    #[test]
    fn what_cannot_be_converted_exactly_is_not() {
        // No molar mass for an unknown test; no mEq for a divalent ion.
        assert_eq!(convert(90.0, "mg/dL", "mmol/L", None), None);
        assert_eq!(convert(2.0, "meq/L", "mmol/L", Some("17861-6")), None);
        assert_eq!(convert(1.0, "kg", "cm", None), None);
        assert_eq!(convert(5.0, "%", "mmol/mol", Some("4548-4")), None);
        assert!(!compatible("mg/dL", "mmol/L", Some("4548-4")));
        assert!(compatible("mg/dL", "mmol/L", Some("2345-7")));
    }
}

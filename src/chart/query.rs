//! What a typed patient query means, for the server's standard `Patient`
//! search parameters and for matching the working set alike.
//!
//! `garc 1984` → `name=garc&birthdate=1984`; `00012345` → `identifier=00012345`;
//! `smi jo` → `name=smi&name=jo` (repeated parameters are ANDed in FHIR);
//! birth dates as people type them: `1971-05-14`, `05/14/1971` (or
//! `14/05/1971`, by the date order setting), `14.05.1971`.

use serde::Deserialize;

/// The shortest name fragment worth a server round trip.
const MIN_NAME: usize = 2;
/// Identifier search is exact on most servers: send only plausible MRNs.
const MIN_IDENTIFIER: usize = 5;

/// How a date with slashes is read: `05/06/1971` is 6 May in one country
/// and 5 June in another. A date that only reads one way (`14/05/1971`) is
/// read that way whatever the setting; dotted dates are day first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Month, day, year (United States).
    #[default]
    Mdy,
    /// Day, month, year.
    Dmy,
}

impl std::str::FromStr for DateOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mdy" => Ok(DateOrder::Mdy),
            "dmy" => Ok(DateOrder::Dmy),
            other => Err(format!("date order {other:?} is not mdy or dmy")),
        }
    }
}

/// Search parameters for a query; empty when nothing is worth asking.
pub fn server_params(query: &str, order: DateOrder) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for token in query.split_whitespace() {
        if let Some(date) = birthdate(token, order) {
            out.push(("birthdate".to_string(), date));
        } else if token.chars().any(|c| c.is_ascii_digit()) {
            if token.chars().count() >= MIN_IDENTIFIER {
                out.push(("identifier".to_string(), token.to_string()));
            }
        } else if token.chars().filter(|c| c.is_alphabetic()).count() >= MIN_NAME {
            out.push(("name".to_string(), token.to_string()));
        }
    }
    out
}

fn plausible_year(y: u32) -> bool {
    (1850..=2100).contains(&y)
}

/// A typed birth date as a FHIR date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
pub fn birthdate(token: &str, order: DateOrder) -> Option<String> {
    let b = token.as_bytes();
    let all_digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let iso = match b.len() {
        4 => all_digits(0..4),
        7 => all_digits(0..4) && b[4] == b'-' && all_digits(5..7),
        10 => {
            all_digits(0..4)
                && b[4] == b'-'
                && all_digits(5..7)
                && b[7] == b'-'
                && all_digits(8..10)
        }
        _ => false,
    };
    if iso {
        let year: u32 = token.get(0..4)?.parse().ok()?;
        let valid = match b.len() {
            7 => chrono::NaiveDate::parse_from_str(&format!("{token}-01"), "%Y-%m-%d").is_ok(),
            10 => chrono::NaiveDate::parse_from_str(token, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        return (plausible_year(year) && valid).then(|| token.to_string());
    }
    let sep = if token.contains('/') {
        '/'
    } else if token.contains('.') {
        '.'
    } else {
        return None;
    };
    let parts: Vec<&str> = token.split(sep).collect();
    let [a, b, y] = parts.as_slice() else {
        return None;
    };
    let num = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 2 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b) = (num(a)?, num(b)?);
    if y.len() != 4 || !y.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let year: u32 = y.parse().ok()?;
    if !plausible_year(year) {
        return None;
    }
    let date = |m: u32, d: u32| chrono::NaiveDate::from_ymd_opt(year as i32, m, d);
    let (first, second) = match (sep, order) {
        ('.', _) | (_, DateOrder::Dmy) => (date(b, a), date(a, b)),
        _ => (date(a, b), date(b, a)),
    };
    first.or(second).map(|d| d.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(q: &str) -> Vec<(String, String)> {
        server_params(q, DateOrder::Mdy)
    }

    #[test]
    fn names_dates_and_mrns() {
        assert_eq!(
            p("garc 1984"),
            vec![
                ("name".into(), "garc".into()),
                ("birthdate".into(), "1984".into())
            ]
        );
        assert_eq!(
            p("00012345"),
            vec![("identifier".into(), "00012345".into())]
        );
        assert_eq!(
            p("smi jo"),
            vec![("name".into(), "smi".into()), ("name".into(), "jo".into())]
        );
        assert_eq!(
            p("1984-03-02"),
            vec![("birthdate".into(), "1984-03-02".into())]
        );
        assert!(p("g 12").is_empty());
    }

    #[test]
    fn birth_dates_as_people_type_them() {
        for (typed, order, iso) in [
            ("1971-05-14", DateOrder::Mdy, Some("1971-05-14")),
            ("05/14/1971", DateOrder::Mdy, Some("1971-05-14")),
            ("5/14/1971", DateOrder::Mdy, Some("1971-05-14")),
            ("14.05.1971", DateOrder::Mdy, Some("1971-05-14")),
            ("14.5.1971", DateOrder::Dmy, Some("1971-05-14")),
            ("14/05/1971", DateOrder::Dmy, Some("1971-05-14")),
            // Only one reading is a date: taken whatever the setting.
            ("14/05/1971", DateOrder::Mdy, Some("1971-05-14")),
            ("05/14/1971", DateOrder::Dmy, Some("1971-05-14")),
            // Both readings are dates: the setting decides.
            ("05/06/1971", DateOrder::Mdy, Some("1971-05-06")),
            ("05/06/1971", DateOrder::Dmy, Some("1971-06-05")),
            ("1971", DateOrder::Mdy, Some("1971")),
            ("1971-05", DateOrder::Mdy, Some("1971-05")),
            ("1971-13", DateOrder::Mdy, None),
            ("31/02/1971", DateOrder::Dmy, None),
            ("05/14/71", DateOrder::Mdy, None),
            ("0001", DateOrder::Mdy, None),
            ("12345", DateOrder::Mdy, None),
        ] {
            assert_eq!(birthdate(typed, order).as_deref(), iso, "{typed} {order:?}");
        }
        assert_eq!(
            server_params("kim 05/14/1971", DateOrder::Mdy),
            vec![
                ("name".into(), "kim".into()),
                ("birthdate".into(), "1971-05-14".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn every_parameter_comes_from_a_token(q in "\\PC{0,40}") {
            let tokens: Vec<&str> = q.split_whitespace().collect();
            for (k, v) in server_params(&q, DateOrder::Mdy) {
                prop_assert!(["name", "birthdate", "identifier"].contains(&k.as_str()));
                prop_assert!(k == "birthdate" || tokens.contains(&v.as_str()));
            }
        }

        #[test]
        fn any_typed_date_reads_back_as_itself(y in 1850u32..2100, m in 1u32..13, d in 1u32..29, dmy: bool) {
            let order = if dmy { DateOrder::Dmy } else { DateOrder::Mdy };
            let iso = format!("{y:04}-{m:02}-{d:02}");
            let slashed = match order {
                DateOrder::Mdy => format!("{m}/{d}/{y}"),
                DateOrder::Dmy => format!("{d}/{m}/{y}"),
            };
            prop_assert_eq!(birthdate(&slashed, order), Some(iso.clone()));
            prop_assert_eq!(birthdate(&format!("{d:02}.{m:02}.{y}"), order), Some(iso.clone()));
            prop_assert_eq!(birthdate(&iso, order), Some(iso));
        }
    }
}

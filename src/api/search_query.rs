//! How a typed patient query maps to standard `Patient` search parameters.
//!
//! `garc 1984` → `name=garc&birthdate=1984`; `00012345` → `identifier=00012345`;
//! `smi jo` → `name=smi&name=jo` (repeated parameters are ANDed in FHIR).

/// The shortest name fragment worth a server round trip.
const MIN_NAME: usize = 2;
/// Identifier search is exact on most servers: send only plausible MRNs.
const MIN_IDENTIFIER: usize = 5;

/// Search parameters for a query; empty when nothing is worth asking.
pub fn server_params(query: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for token in query.split_whitespace() {
        if let Some(date) = birthdate(token) {
            out.push(("birthdate".to_string(), date.to_string()));
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

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with a plausible year.
fn birthdate(token: &str) -> Option<&str> {
    let b = token.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = match b.len() {
        4 => digits(0..4),
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => false,
    };
    if !ok {
        return None;
    }
    let year: u32 = token.get(0..4)?.parse().ok()?;
    (1850..=2100).contains(&year).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(q: &str) -> Vec<(String, String)> {
        server_params(q)
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

    proptest! {
        #[test]
        fn every_parameter_comes_from_a_token(q in "\\PC{0,40}") {
            let tokens: Vec<&str> = q.split_whitespace().collect();
            for (k, v) in server_params(&q) {
                prop_assert!(["name", "birthdate", "identifier"].contains(&k.as_str()));
                prop_assert!(tokens.contains(&v.as_str()));
            }
        }
    }
}

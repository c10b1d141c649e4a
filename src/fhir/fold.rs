//! Letters folded the way people type names on a keyboard without them:
//! "Nguyễn" as "nguyen", "Søren" as "soren", "Yılmaz" as "yilmaz", "Łódź" as
//! "lodz", "Straße" as "strasse". Unicode decomposition removes accents but
//! leaves letters that are not a base letter plus a mark (ø, ł, ı, ß, æ, đ,
//! þ…), so those are mapped by hand. The client's fuzzy index and the
//! server's name index both fold with this one function, so a name found on
//! one side is found on the other.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Letters that decomposition keeps whole, and what a keyboard user types
/// for them. Lower case only: input is lower-cased first.
fn spelled(c: char) -> Option<&'static str> {
    Some(match c {
        'ø' => "o",
        'ł' => "l",
        'ı' => "i",
        'ß' | 'ẞ' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ħ' => "h",
        'ŧ' => "t",
        'ŀ' => "l",
        'ĸ' => "k",
        'ŋ' => "n",
        'ɨ' => "i",
        'ſ' => "s",
        'ƒ' => "f",
        'ǝ' | 'ə' => "e",
        // Typographic apostrophes in names like O’Brien.
        '\u{2019}' | '\u{2018}' | '\u{02BC}' => "'",
        _ => return None,
    })
}

/// Lower case, accents removed, special letters spelled out.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        for l in c.to_lowercase() {
            match spelled(l) {
                Some(t) => out.push_str(t),
                None => out.push(l),
            }
        }
    }
    // Lower-casing can yield new combining marks ('İ' → "i̇"): drop those too.
    if out.chars().any(is_combining_mark) {
        out = out.chars().filter(|c| !is_combining_mark(*c)).collect();
    }
    out
}

/// Whether folding changes `s` (most names are plain ASCII lower case after
/// the first letter; callers keep a folded copy only where it differs).
pub fn folds_to_itself(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase() && b != b'\'')
        || fold(s) == s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_fold_the_way_they_are_typed() {
        for (name, typed) in [
            ("Nguyễn", "nguyen"),
            ("Søren", "soren"),
            ("Yılmaz", "yilmaz"),
            ("Łódź", "lodz"),
            ("Straße", "strasse"),
            ("Ærøskøbing", "aeroskobing"),
            ("Đặng", "dang"),
            ("Þórsdóttir", "thorsdottir"),
            ("Ordóñez", "ordonez"),
            ("AGUSTÍN", "agustin"),
            ("İstanbul", "istanbul"),
            ("O’Brien", "o'brien"),
            ("Œuvre", "oeuvre"),
            ("García, Ana", "garcia, ana"),
        ] {
            assert_eq!(fold(name), typed, "{name}");
        }
        assert!(folds_to_itself("smith"));
        assert!(!folds_to_itself("Smith"));
        assert!(!folds_to_itself("søren"));
    }

    proptest! {
        #[test]
        fn folding_is_idempotent_and_leaves_no_marks(s in "\\PC{0,40}") {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once.clone());
            prop_assert!(!once.chars().any(is_combining_mark));
        }

        #[test]
        fn latin_letters_fold_to_ascii(s in "[a-zA-Zàáâãäåçèéêëìíîïñòóôõöøùúûüýÿłıßæœđðþễịờứ ]{0,30}") {
            prop_assert!(fold(&s).is_ascii(), "{:?} -> {:?}", s, fold(&s));
        }

        #[test]
        fn a_folded_prefix_is_a_prefix_of_the_folded_name(s in "\\PC{0,20}", t in "\\PC{0,20}") {
            // What the server's prefix index relies on: folding a typed
            // prefix never yields something the folded whole does not start with,
            // for cuts between characters that are not followed by marks.
            let whole = format!("{s}{t}");
            let starts_clean = !t.nfd().next().is_some_and(is_combining_mark);
            if starts_clean {
                prop_assert!(fold(&whole).starts_with(&fold(&s)));
            }
        }
    }
}

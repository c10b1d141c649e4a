//! One function for untrusted text: control characters, bidi overrides and
//! zero-width marks become visible markers, never reach the terminal, and are
//! never silently deleted (a clinician must see that something was there).
//!
//! Markers: C0 controls become their Control Pictures glyph (`␛` for ESC,
//! `␀` for NUL, ...), DEL becomes `␡`, everything else that is replaced
//! becomes `⟨U+202E⟩`. A line feed is kept (notes are multi-line), a CR LF
//! pair becomes a line feed, and a tab becomes spaces.

use std::borrow::Cow;
use std::fmt::Write;

/// Spaces a tab becomes.
const TAB: &str = "    ";

/// Replace characters that could steer or hide text on a terminal with
/// visible markers. Returns the input unchanged (borrowed) when it is clean.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let Some(first) = first_to_replace(s) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    let mut chars = s[first..].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            c if !needs_replacing(c) => out.push(c),
            '\t' => out.push_str(TAB),
            c => push_marker(&mut out, c),
        }
    }
    Cow::Owned(out)
}

/// Byte offset of the first character [`needs_replacing`], if any. Most text
/// is clean ASCII, so bytes are checked directly and only non-ASCII ones decoded.
fn first_to_replace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if (b < 0x20 && b != b'\n') || b == 0x7f {
                return Some(i);
            }
            i += 1;
        } else {
            let c = s[i..].chars().next()?;
            if needs_replacing(c) {
                return Some(i);
            }
            i += c.len_utf8();
        }
    }
    None
}

/// Sanitise every string (keys are left alone) of a decoded JSON document in place.
pub fn sanitize_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = sanitize(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sanitize_json),
        Value::Object(map) => map.values_mut().for_each(sanitize_json),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Whether `c` is never shown as itself. A line feed is kept as is.
pub fn needs_replacing(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (u < 0x20 && c != '\n') || u == 0x7f;
    }
    matches!(u,
        0x80..=0x9f                // C1 controls (CSI, OSC, ...)
        | 0xad                     // soft hyphen
        | 0x34f                    // combining grapheme joiner (invisible)
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2
        | 0x115f | 0x1160          // Hangul fillers (render as nothing)
        | 0x17b4 | 0x17b5          // Khmer invisible vowels
        | 0x180b..=0x180f          // Mongolian selectors and vowel separator
        | 0x200b..=0x200f          // zero-width space/joiners, LRM/RLM
        | 0x2028 | 0x2029          // line and paragraph separators
        | 0x202a..=0x202e          // bidi embeddings and overrides
        | 0x2060..=0x206f          // word joiner, invisible operators, bidi isolates
        | 0x3164 | 0xffa0          // Hangul fillers
        | 0xfeff                   // zero-width no-break space / BOM
        | 0xfff9..=0xfffb          // interlinear annotation
        | 0xfffe | 0xffff          // noncharacters
        | 0x110bd | 0x110cd
        | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a
        | 0xe0000..=0xe007f        // tags
    )
}

fn push_marker(out: &mut String, c: char) {
    let u = c as u32;
    match u {
        // Control Pictures: U+2400 + the C0 code.
        0x00..=0x1f => out.push(char::from_u32(0x2400 + u).unwrap_or('\u{fffd}')),
        0x7f => out.push('\u{2421}'),
        _ => {
            let _ = write!(out, "⟨U+{u:04X}⟩");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clean_text_is_borrowed() {
        let s = "Müller, Anna — 1962-03-04\nAllergy: penicillin 💊";
        assert!(matches!(sanitize(s), Cow::Borrowed(x) if x == s));
    }

    #[test]
    fn escape_sequences_become_visible() {
        assert_eq!(sanitize("a\u{1b}[2Jb"), "a␛[2Jb");
        assert_eq!(sanitize("\u{1b}]52;c;x\u{7}"), "␛]52;c;x␇");
        assert_eq!(sanitize("\u{0}\u{7f}"), "␀␡");
        assert_eq!(sanitize("x\u{9b}31m"), "x⟨U+009B⟩31m");
    }

    #[test]
    fn bidi_and_invisible_marks_become_visible() {
        assert_eq!(sanitize("abc\u{202e}fed"), "abc⟨U+202E⟩fed");
        assert_eq!(sanitize("a\u{2066}b\u{2069}"), "a⟨U+2066⟩b⟨U+2069⟩");
        assert_eq!(sanitize("\u{200b}"), "⟨U+200B⟩");
        assert_eq!(sanitize("pe\u{ad}nicillin"), "pe⟨U+00AD⟩nicillin");
        assert_eq!(sanitize("\u{feff}x"), "⟨U+FEFF⟩x");
        assert_eq!(sanitize("a\u{2028}b"), "a⟨U+2028⟩b");
        assert_eq!(
            sanitize("\u{61c}\u{200e}\u{200f}\u{180e}"),
            "⟨U+061C⟩⟨U+200E⟩⟨U+200F⟩⟨U+180E⟩"
        );
        assert_eq!(sanitize("\u{e0041}"), "⟨U+E0041⟩");
    }

    #[test]
    fn line_feeds_stay_tabs_become_spaces_crlf_becomes_lf() {
        assert_eq!(sanitize("a\nb"), "a\nb");
        assert_eq!(sanitize("a\tb"), "a    b");
        assert_eq!(sanitize("a\r\nb\r"), "a\nb␍");
    }

    #[test]
    fn json_strings_are_cleaned_keys_are_not() {
        let mut v = serde_json::json!({
            "name": [{"family": "Doe\u{202e}", "given": ["\u{1b}[31mJo"]}],
            "k\u{7}": 3,
            "active": true
        });
        sanitize_json(&mut v);
        assert_eq!(v["name"][0]["family"], "Doe⟨U+202E⟩");
        assert_eq!(v["name"][0]["given"][0], "␛[31mJo");
        assert_eq!(v["k\u{7}"], 3);
        assert_eq!(v["active"], true);
    }

    fn hostile() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            '\u{0}', '\u{1b}', '\u{7}', '\r', '\n', '\t', '\u{7f}', '\u{85}', '\u{9b}', '\u{ad}',
            '\u{61c}', '\u{180e}', '\u{200b}', '\u{200d}', '\u{200e}', '\u{2028}', '\u{202e}',
            '\u{2064}', '\u{2066}', '\u{2069}', '\u{feff}', 'a', 'é', '⟨', '␛',
        ]);
        prop::collection::vec(prop_oneof![special, any::<char>()], 0..64)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn output_has_no_forbidden_char(s in hostile()) {
            let out = sanitize(&s);
            prop_assert!(!out.chars().any(needs_replacing), "{out:?}");
        }

        #[test]
        fn clean_input_is_returned_unchanged(s in "\\PC*") {
            if !s.chars().any(needs_replacing) {
                prop_assert!(matches!(sanitize(&s), Cow::Borrowed(_)));
            }
        }

        #[test]
        fn no_char_is_silently_dropped(s in hostile()) {
            // Only the CR of a CR LF pair merges into the line feed.
            let crlf = s.matches("\r\n").count();
            let out = sanitize(&s);
            prop_assert!(out.chars().count() + crlf >= s.chars().count());
            for c in s.chars().filter(|c| needs_replacing(*c) && *c != '\r' && *c != '\t') {
                let marker = {
                    let mut m = String::new();
                    push_marker(&mut m, c);
                    m
                };
                prop_assert!(out.contains(&marker), "{c:?} left no marker in {out:?}");
            }
        }

        #[test]
        fn sanitising_twice_is_sanitising_once(s in hostile()) {
            let once = sanitize(&s).into_owned();
            let twice = sanitize(&once);
            prop_assert_eq!(twice.as_ref(), once.as_str());
            prop_assert!(matches!(twice, Cow::Borrowed(_)));
        }
    }
}

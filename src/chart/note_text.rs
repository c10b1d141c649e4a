//! A note's text as a clinician reads it: the attachment decoded from
//! base64, and markup (HTML, XHTML) turned into plain text — paragraphs and
//! list items on lines of their own, entities decoded, scripts and styles
//! dropped — so a note never shows its tags. Every line is sanitised: the
//! text never went through the JSON sanitiser.

use base64::Engine;

use crate::fhir::model::DocumentReference;
use crate::fhir::sanitize::sanitize;

/// The note's text, or why it cannot be shown as text.
pub fn decode(doc: &DocumentReference) -> String {
    let Some(att) = doc.content.iter().find_map(|c| c.attachment.as_ref()) else {
        return "(no content)".into();
    };
    let ctype = att
        .content_type
        .as_deref()
        .unwrap_or("text/plain")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some(data) = att.data.as_deref() else {
        return "(the text is stored elsewhere and is not shown here)".into();
    };
    let markup = matches!(ctype.as_str(), "text/html" | "application/xhtml+xml");
    if !ctype.starts_with("text/") && !markup {
        return format!("(an attachment of type {ctype}; it cannot be shown as text)");
    }
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) else {
        return "(the note's content is not valid base64)".into();
    };
    let text = String::from_utf8_lossy(&bytes);
    let plain = if markup {
        html_to_text(&text)
    } else {
        text.into_owned()
    };
    // Line breaks are the note's own; each line is cleaned on its own.
    plain
        .lines()
        .map(|l| sanitize(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tags that end a line of text.
fn is_block(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "div"
            | "br"
            | "li"
            | "tr"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "table"
            | "section"
            | "article"
            | "blockquote"
            | "pre"
            | "hr"
            | "dt"
            | "dd"
            | "title"
    )
}

/// Plain text of an HTML fragment or document.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut skipping: Option<String> = None;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skipping.is_none() {
                push_text(&mut out, rest);
            }
            break;
        };
        if skipping.is_none() {
            push_text(&mut out, &rest[..lt]);
        }
        rest = &rest[lt..];
        // A comment runs to `-->`, a tag to `>`; an unclosed one is text.
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            if skipping.is_none() {
                push_text(&mut out, rest);
            }
            break;
        };
        let inner = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = inner.starts_with('/');
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(skip) = &skipping {
            if closing && name == *skip {
                skipping = None;
            }
            continue;
        }
        if !closing && matches!(name.as_str(), "script" | "style" | "head") && !inner.ends_with('/')
        {
            skipping = Some(name);
            continue;
        }
        if is_block(&name) {
            if !out.ends_with('\n') && !out.is_empty() {
                out.push('\n');
            }
            if !closing && name == "li" {
                out.push_str("• ");
            }
        } else if matches!(name.as_str(), "td" | "th") && !closing && !out.ends_with('\n') {
            out.push_str("  ");
        }
    }
    // Blank lines at most one at a time, trailing spaces trimmed.
    let mut lines: Vec<&str> = Vec::new();
    for l in out.lines().map(str::trim_end) {
        if !(l.is_empty() && lines.last().is_none_or(|p| p.is_empty())) {
            lines.push(l);
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Text between tags: whitespace collapsed as a browser does, entities decoded.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode_entities(text);
    for (i, word) in decoded.split_whitespace().enumerate() {
        let at_line_start = out.is_empty() || out.ends_with('\n') || out.ends_with("• ");
        if (i > 0 || text.starts_with(char::is_whitespace)) && !at_line_start && !out.ends_with(' ')
        {
            out.push(' ');
        }
        out.push_str(word);
    }
    if text.ends_with(char::is_whitespace) && !decoded.trim().is_empty() {
        out.push(' ');
    }
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|&i| i <= 10);
        let decoded = end.and_then(|i| {
            let name = &rest[1..i];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                "deg" => '°',
                "micro" => 'µ',
                "plusmn" => '±',
                "ge" => '≥',
                "le" => '≤',
                "ndash" => '–',
                "mdash" => '—',
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, i))
        });
        match decoded {
            Some((c, i)) => {
                out.push(c);
                rest = &rest[i + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn html_reads_as_text() {
        let html = "<html><head><title>x</title><style>p{color:red}</style></head><body>\
            <h2>Assessment</h2><p>BP 150/95 &amp; HR 88 &mdash; recheck in 2&nbsp;wk.</p>\
            <ul><li>Lisinopril&#160;10 mg</li><li>Stop &lt;NSAIDs&gt;</li></ul>\
            <script>alert(1)</script><!-- hidden --><p>Temp 38.2&deg;C</p></body></html>";
        assert_eq!(
            html_to_text(html),
            "Assessment\nBP 150/95 & HR 88 — recheck in 2 wk.\n• Lisinopril 10 mg\n• Stop <NSAIDs>\nTemp 38.2°C"
        );
        assert_eq!(html_to_text("a<br>b<br/>c"), "a\nb\nc");
        assert_eq!(
            html_to_text("5 < 6 and &unknown; &"),
            "5 < 6 and &unknown; &"
        );
    }

    #[test]
    fn a_note_in_html_is_shown_without_markup() {
        let data = base64::engine::general_purpose::STANDARD
            .encode("<p>Seen for <b>cough</b>.</p><p>Plan: \u{1b}[2Jrest</p>");
        let doc: DocumentReference = serde_json::from_value(json!({
            "content": [{"attachment": {"contentType": "text/html; charset=utf-8", "data": data}}]
        }))
        .unwrap();
        let text = decode(&doc);
        assert!(text.starts_with("Seen for cough.\nPlan: "), "{text}");
        assert!(!text.contains('\u{1b}'), "escape sequences are neutralised");
        assert!(!text.contains('<'));
    }

    proptest! {
        #[test]
        fn any_markup_reads_without_panicking(s in "\\PC{0,200}") {
            let _ = html_to_text(&s);
        }

        #[test]
        fn text_without_markup_keeps_its_words(s in "[a-zA-Z0-9 .,]{0,80}") {
            let words: Vec<&str> = s.split_whitespace().collect();
            prop_assert_eq!(html_to_text(&s), words.join(" "));
        }
    }
}

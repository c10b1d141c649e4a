//! The fields of a note's text, found in the text itself so that they
//! survive any editing around them:
//!
//! - `***` a blank to fill before signing;
//! - `{{pick: Label | a | b}}` one choice, `{{pick+: Label | a | b}}` several,
//!   chosen with keys and replaced by the choice;
//! - `{{vitals}}` and the other data links (see [`DataLink`]), replaced by
//!   text from the chart when the note is made.

/// A data link: text filled from the open chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLink {
    /// Name, sex, age, birth date, MRN.
    Demographics,
    Allergies,
    /// Active problems.
    Problems,
    /// Active medications with their doses.
    Medications,
    /// The latest vital signs with their times.
    Vitals,
    /// The last `n` values of a test (LOINC code), with units, flags, dates.
    Results {
        loinc: String,
        n: usize,
    },
    /// The latest value of each key lab.
    Labs,
    Today,
    /// Who writes the note.
    Author,
}

impl DataLink {
    fn parse(inner: &str) -> Option<DataLink> {
        let mut words = inner.split_whitespace();
        let head = words.next()?;
        let link = match head {
            "demographics" => DataLink::Demographics,
            "allergies" => DataLink::Allergies,
            "problems" => DataLink::Problems,
            "medications" => DataLink::Medications,
            "vitals" => DataLink::Vitals,
            "labs" => DataLink::Labs,
            "today" => DataLink::Today,
            "author" => DataLink::Author,
            "results" => {
                let loinc = words.next()?.to_string();
                let n = match words.next() {
                    Some(n) => n.parse().ok().filter(|n| (1..=50).contains(n))?,
                    None => 3,
                };
                DataLink::Results { loinc, n }
            }
            _ => return None,
        };
        words.next().is_none().then_some(link)
    }
}

/// A pick-list: a label, its options, one or several choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickList {
    pub label: String,
    pub options: Vec<String>,
    pub multiple: bool,
}

impl PickList {
    fn parse(inner: &str) -> Option<PickList> {
        let (head, rest) = inner.split_once(':')?;
        let multiple = match head.trim() {
            "pick" => false,
            "pick+" => true,
            _ => return None,
        };
        let mut parts = rest.split('|').map(str::trim);
        let label = parts.next()?.to_string();
        let options: Vec<String> = parts
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        (!label.is_empty() && !options.is_empty() && options.len() <= 9).then_some(PickList {
            label,
            options,
            multiple,
        })
    }

    /// The text a choice leaves in the note.
    pub fn chosen(&self, picks: &[usize]) -> String {
        picks
            .iter()
            .filter_map(|&i| self.options.get(i))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Something in double braces (or a blank), with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    Data {
        offset: usize,
        len: usize,
        link: DataLink,
    },
    Pick {
        offset: usize,
        len: usize,
        pick: PickList,
    },
    Blank {
        offset: usize,
    },
    Unknown {
        offset: usize,
        what: String,
    },
}

/// Every placeholder of a text, in order.
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with("{{") {
            if let Some(end) = rest.find("}}") {
                let inner = &rest[2..end];
                let len = end + 2;
                let p = if inner.trim_start().starts_with("pick") {
                    match PickList::parse(inner) {
                        Some(pick) => Placeholder::Pick {
                            offset: i,
                            len,
                            pick,
                        },
                        None => Placeholder::Unknown {
                            offset: i,
                            what: inner.trim().to_string(),
                        },
                    }
                } else {
                    match DataLink::parse(inner) {
                        Some(link) => Placeholder::Data {
                            offset: i,
                            len,
                            link,
                        },
                        None => Placeholder::Unknown {
                            offset: i,
                            what: inner.trim().to_string(),
                        },
                    }
                };
                out.push(p);
                i += len;
                continue;
            }
        } else if rest.starts_with("***") {
            out.push(Placeholder::Blank { offset: i });
            i += 3;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// What a field asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Blank,
    Pick(PickList),
}

/// A field still to fill, by line and character column (as the editor
/// counts them), with its length in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub row: usize,
    pub col: usize,
    pub len: usize,
    pub kind: FieldKind,
}

/// The fields left to fill in `lines`, in reading order.
pub fn fields(lines: &[String]) -> Vec<Field> {
    let mut out = Vec::new();
    for (row, line) in lines.iter().enumerate() {
        for p in placeholders(line) {
            let (offset, len, kind) = match p {
                Placeholder::Blank { offset } => (offset, 3, FieldKind::Blank),
                Placeholder::Pick { offset, len, pick } => (offset, len, FieldKind::Pick(pick)),
                _ => continue,
            };
            out.push(Field {
                row,
                col: line[..offset].chars().count(),
                len: line[offset..offset + len].chars().count(),
                kind,
            });
        }
    }
    out
}

/// The field after (or, `forward == false`, before) the cursor, wrapping.
pub fn next_field(fields: &[Field], cursor: (usize, usize), forward: bool) -> Option<&Field> {
    if forward {
        fields
            .iter()
            .find(|f| (f.row, f.col) > cursor)
            .or(fields.first())
    } else {
        fields
            .iter()
            .rev()
            .find(|f| (f.row, f.col) < cursor)
            .or(fields.last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn placeholders_are_found_in_order() {
        let t = "Caller: {{pick: Caller | Patient | Parent}}\nS: ***\n{{vitals}} {{results 2823-3 2}} {{vitalz}}";
        let kinds: Vec<String> = placeholders(t)
            .into_iter()
            .map(|p| match p {
                Placeholder::Data { link, .. } => format!("{link:?}"),
                Placeholder::Pick { pick, .. } => format!("pick {}", pick.options.len()),
                Placeholder::Blank { .. } => "blank".into(),
                Placeholder::Unknown { what, .. } => format!("unknown {what}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "pick 2",
                "blank",
                "Vitals",
                "Results { loinc: \"2823-3\", n: 2 }",
                "unknown vitalz"
            ]
        );
        assert!(matches!(
            placeholders("{{pick: Label}}").as_slice(),
            [Placeholder::Unknown { .. }]
        ));
        assert!(matches!(
            placeholders("{{results 2823-3 0}}").as_slice(),
            [Placeholder::Unknown { .. }]
        ));
    }

    #[test]
    fn fields_are_counted_in_characters_and_navigated_in_order() {
        let lines: Vec<String> = [
            "Née: ***",
            "{{pick+: Checks | A | B | C}} and ***",
            "nothing here",
        ]
        .map(String::from)
        .to_vec();
        let f = fields(&lines);
        assert_eq!(f.len(), 3);
        assert_eq!(
            (f[0].row, f[0].col, f[0].len),
            (0, 5, 3),
            "columns count characters"
        );
        assert!(matches!(&f[1].kind, FieldKind::Pick(p) if p.multiple && p.options.len() == 3));
        assert_eq!((f[2].row, f[2].col), (1, 34));
        assert_eq!(next_field(&f, (0, 0), true).map(|x| x.row), Some(0));
        assert_eq!(
            next_field(&f, (0, 5), true).map(|x| (x.row, x.col)),
            Some((1, 0))
        );
        assert_eq!(
            next_field(&f, (2, 0), true).map(|x| (x.row, x.col)),
            Some((0, 5)),
            "wraps"
        );
        assert_eq!(
            next_field(&f, (1, 0), false).map(|x| (x.row, x.col)),
            Some((0, 5))
        );
        assert_eq!(next_field(&[], (0, 0), true), None);
        let FieldKind::Pick(p) = &f[1].kind else {
            unreachable!()
        };
        assert_eq!(p.chosen(&[0, 2]), "A, C");
    }

    proptest! {
        #[test]
        fn any_text_is_scanned_without_panicking(s in "\\PC{0,120}") {
            let lines: Vec<String> = s.lines().map(String::from).collect();
            for f in fields(&lines) {
                prop_assert!(f.col + f.len <= lines[f.row].chars().count());
            }
        }
    }
}

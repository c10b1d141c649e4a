//! Which of the scopes a client asked for are granted: the OpenID and
//! refresh scopes, and user-level resource scopes in SMART v1
//! (`user/Observation.read`) and v2 (`user/Observation.rs`) form. Others
//! (patient-level scopes need a patient picker this server has not) are
//! left out of the grant, as RFC 6749 §3.3 allows; the token answer says
//! what was granted.
//!
//! The resource scopes granted are recorded with each access token and
//! enforced ([`Scopes`]): they narrow what the user's role allows, never
//! widen it. A token issued without a scope (`chartty serve token issue`,
//! the demo's start tokens) is decided by the role alone.

use super::super::params;

/// What discovery lists (the resource forms stand for every type).
pub const SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
    "user/*.read",
    "user/*.write",
    "user/*.*",
    "user/*.cruds",
    "user/*.rs",
];

const PLAIN: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
];

/// SMART v2 permissions: a non-empty subsequence of `cruds`.
fn v2_permissions(p: &str) -> bool {
    let mut rest = "cruds";
    !p.is_empty()
        && p.chars().all(|c| match rest.find(c) {
            Some(i) => {
                rest = &rest[i + 1..];
                true
            }
            None => false,
        })
}

fn resource_scope(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("user/") else {
        return false;
    };
    let Some((ty, perm)) = rest.split_once('.') else {
        return false;
    };
    (ty == "*" || params::type_params(ty).is_some())
        && (matches!(perm, "read" | "write" | "*") || v2_permissions(perm))
}

/// The granted part of a requested `scope`, space-separated, in the order
/// asked, each once.
pub fn grant(requested: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split_ascii_whitespace() {
        if (PLAIN.contains(&s) || resource_scope(s)) && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// Whether a granted scope string holds `name`.
pub fn has(granted: &str, name: &str) -> bool {
    granted.split_ascii_whitespace().any(|s| s == name)
}

/// Whether the grant comes with a refresh token.
pub fn refreshable(granted: &str) -> bool {
    has(granted, "offline_access") || has(granted, "online_access")
}

/// What a token may do to one resource type, by SMART v2 letter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Letters {
    create: bool,
    read: bool,
    update: bool,
    delete: bool,
    search: bool,
}

impl Letters {
    fn of(perm: &str) -> Letters {
        let all = Letters {
            create: true,
            read: true,
            update: true,
            delete: true,
            search: true,
        };
        match perm {
            "*" => all,
            // v1 read is read and search; write is every change.
            "read" => Letters {
                read: true,
                search: true,
                ..Letters::default()
            },
            "write" => Letters {
                create: true,
                update: true,
                delete: true,
                ..Letters::default()
            },
            v2 if v2_permissions(v2) => Letters {
                create: v2.contains('c'),
                read: v2.contains('r'),
                update: v2.contains('u'),
                delete: v2.contains('d'),
                search: v2.contains('s'),
            },
            _ => Letters::default(),
        }
    }
}

/// The kinds of access to FHIR a token's scopes grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// (resource type or `*`, what it allows)
    grants: Vec<(String, Letters)>,
}

/// One FHIR interaction as the scopes name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Create,
    /// read, vread, history, and each resource a search returns
    Read,
    Update,
    Delete,
    Search,
}

impl Scopes {
    /// The resource scopes of a granted scope string (the others, `openid`
    /// and the like, grant no access to records).
    pub fn parse(granted: &str) -> Scopes {
        let grants = granted
            .split_ascii_whitespace()
            .filter(|s| resource_scope(s))
            .filter_map(|s| {
                let (ty, perm) = s.strip_prefix("user/")?.split_once('.')?;
                Some((ty.to_string(), Letters::of(perm)))
            })
            .collect();
        Scopes { grants }
    }

    /// Whether the scopes allow `wanted` on resources of type `ty`.
    pub fn allows(&self, wanted: Wanted, ty: &str) -> bool {
        self.grants
            .iter()
            .filter(|(t, _)| t == "*" || t == ty)
            .any(|(_, l)| match wanted {
                Wanted::Create => l.create,
                Wanted::Read => l.read,
                Wanted::Update => l.update,
                Wanted::Delete => l.delete,
                Wanted::Search => l.search,
            })
    }
}

/// What a v1 or v2 permission allows, in words.
fn permission_words(perm: &str) -> String {
    match perm {
        "read" => "read and search".to_string(),
        "write" => "create, change and delete".to_string(),
        "*" => "read, search, create, change and delete".to_string(),
        v2 => {
            let words: Vec<&str> = v2
                .chars()
                .filter_map(|c| match c {
                    'c' => Some("create"),
                    'r' => Some("read"),
                    'u' => Some("change"),
                    'd' => Some("delete"),
                    's' => Some("search"),
                    _ => None,
                })
                .collect();
            match words.as_slice() {
                [] => String::new(),
                [one] => (*one).to_string(),
                [init @ .., last] => format!("{} and {last}", init.join(", ")),
            }
        }
    }
}

/// A granted scope in plain words, one line per kind of access, for the
/// person approving it.
pub fn plain(granted: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_permission: Vec<(String, Vec<String>)> = Vec::new();
    let mut identity = false;
    for s in granted.split_ascii_whitespace() {
        match s {
            "openid" | "fhirUser" | "profile" => identity = true,
            _ => {
                let Some((ty, perm)) = s.strip_prefix("user/").and_then(|r| r.split_once('.'))
                else {
                    continue;
                };
                let words = permission_words(perm);
                let what = if ty == "*" {
                    "every kind of record".to_string()
                } else {
                    ty.to_string()
                };
                match by_permission.iter_mut().find(|(w, _)| *w == words) {
                    Some((_, types)) => types.push(what),
                    None => by_permission.push((words, vec![what])),
                }
            }
        }
    }
    if identity {
        out.push("Know who you are (your name and login)".to_string());
    }
    for (words, types) in by_permission {
        let mut line = words;
        if let Some(first) = line.get(..1) {
            line = format!("{}{}", first.to_uppercase(), &line[1..]);
        }
        out.push(format!("{line}: {}", types.join(", ")));
    }
    if has(granted, "offline_access") {
        out.push(
            "Keep its access renewing until you sign out in it (chartty logout), even after the terminal is closed".to_string(),
        );
    } else if has(granted, "online_access") {
        out.push("Keep its access renewing while it is in use".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_their_letters_say() {
        use Wanted::*;
        let s = Scopes::parse("openid user/Patient.rs user/Task.cruds user/Observation.read");
        assert!(s.allows(Read, "Patient") && s.allows(Search, "Patient"));
        assert!(!s.allows(Create, "Patient") && !s.allows(Update, "Patient"));
        assert!(s.allows(Create, "Task") && s.allows(Update, "Task") && s.allows(Delete, "Task"));
        assert!(s.allows(Search, "Observation") && !s.allows(Update, "Observation"));
        assert!(!s.allows(Read, "Condition"));
        let all = Scopes::parse("user/*.read");
        assert!(all.allows(Read, "Condition") && all.allows(Search, "Encounter"));
        assert!(!all.allows(Create, "Condition"));
        let write = Scopes::parse("user/*.write user/Patient.r");
        assert!(write.allows(Update, "Condition") && !write.allows(Read, "Condition"));
        assert!(write.allows(Read, "Patient") && !write.allows(Search, "Patient"));
        assert!(Scopes::parse("user/*.*").allows(Delete, "Patient"));
        assert!(Scopes::parse("user/*.cud").allows(Create, "Patient"));
        assert!(!Scopes::parse("openid offline_access").allows(Read, "Patient"));
    }

    #[test]
    fn grants_what_it_knows_in_order_once() {
        assert_eq!(
            grant(
                "openid fhirUser openid offline_access user/*.cruds launch/patient patient/*.read user/Observation.rs user/Nope.read user/Patient.sc user/Patient.x"
            ),
            "openid fhirUser offline_access user/*.cruds user/Observation.rs"
        );
        assert_eq!(
            grant("user/*.read user/*.* user/*.write"),
            "user/*.read user/*.* user/*.write"
        );
        assert_eq!(grant(""), "");
        assert!(refreshable("openid online_access"));
        assert_eq!(
            plain(
                "openid fhirUser offline_access user/Patient.rs user/Observation.rs user/Task.cruds user/*.read"
            ),
            vec![
                "Know who you are (your name and login)",
                "Read and search: Patient, Observation, every kind of record",
                "Create, read, change, delete and search: Task",
                "Keep its access renewing until you sign out in it (chartty logout), even after the terminal is closed",
            ]
        );
        assert!(!refreshable("openid"));
    }
}

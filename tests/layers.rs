//! The layers import one way (see `src/lib.rs`): this fails, naming every
//! file and line at once, when a module reaches into a layer above it or
//! across to the other half.

use std::path::{Path, PathBuf};

/// (directory or file under `src/`, modules it must not import).
const RULES: &[(&str, &[&str])] = &[
    ("fhir", &["tui", "api", "chart", "server", "config", "cli"]),
    (
        "roles.rs",
        &["tui", "api", "chart", "server", "config", "cli"],
    ),
    ("chart", &["tui", "api", "server", "config", "cli"]),
    ("api", &["tui", "server", "config", "cli"]),
    ("notes", &["tui", "api", "server", "cli"]),
    ("config.rs", &["tui", "api", "server", "cli"]),
    ("drafts", &["tui", "api", "server", "cli"]),
    (
        "keystore.rs",
        &[
            "tui", "api", "chart", "server", "config", "cli", "drafts", "notes",
        ],
    ),
    (
        "triage",
        &[
            "tui", "api", "chart", "server", "config", "cli", "drafts", "notes", "keystore",
        ],
    ),
    ("server", &["tui", "api", "chart", "config", "cli"]),
    ("tui", &["server", "cli"]),
    // Panes turn actions into commands; only the app and the runner talk to
    // the network layer.
    ("tui/panes", &["api"]),
    ("tui/popups", &["api"]),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of `text` that name `crate::<module>` (as a path or in a `use`
/// group), outside comments.
fn uses(text: &str, module: &str) -> Vec<usize> {
    let needle = format!("crate::{module}");
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let code = l.split("//").next().unwrap_or("");
            code.match_indices(&needle).any(|(i, _)| {
                let after = code[i + needle.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn no_layer_imports_from_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut failures = Vec::new();
    for (place, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(place), &mut files);
        assert!(!files.is_empty(), "src/{place} holds no Rust files");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for module in *forbidden {
                for line in uses(&text, module) {
                    failures.push(format!(
                        "{}:{line}: `crate::{module}` is not for src/{place}",
                        file.strip_prefix(&src).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_check_sees_an_import() {
    assert_eq!(uses("use crate::tui::app::App;\n", "tui"), [1]);
    assert_eq!(uses("x\n    crate::tui::panes::fit(s)\n", "tui"), [2]);
    assert!(uses("// crate::tui is mentioned in a comment\n", "tui").is_empty());
    assert!(uses("use crate::tuin::X;\n", "tui").is_empty());
}

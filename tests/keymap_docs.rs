//! `docs/keymap.md` is generated from `keymaps/default.toml`; this fails when
//! the two drift apart. `UPDATE_DOCS=1 cargo test --test keymap_docs` rewrites it.

use std::path::Path;

use chartty::tui::keymap::{Keymap, document};

#[test]
fn keymap_doc_matches_the_default_keymap() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/keymap.md");
    let expected = document(&Keymap::defaults());
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| !v.is_empty()) {
        std::fs::write(&path, &expected).expect("write docs/keymap.md");
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/keymap.md is out of date with keymaps/default.toml; \
         run `UPDATE_DOCS=1 cargo test --test keymap_docs` and commit the result"
    );
}

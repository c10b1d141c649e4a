//! Themes: named semantic slots loaded from `themes/*.toml`.

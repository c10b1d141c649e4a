//! Keymaps: the embedded `keymaps/default.toml` merged with the user's file,
//! looked up as a trie so multi-key sequences (`g g`) have a pending state.

//! Popups drawn over the panes: help, command palette, which-key.

//! The charting TUI. One state owned by the main task; panes turn actions into
//! commands and never do I/O; only `crate::api` talks to the network.

pub mod action;
pub mod keymap;
pub mod popups;
pub mod theme;

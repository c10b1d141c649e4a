//! The charting TUI. One state owned by the main task; panes turn actions into
//! commands and never do I/O; only `crate::api` talks to the network.

pub mod action;
pub mod app;
pub mod backend;
pub mod command;
pub mod event;
pub mod headless;
pub mod keeper;
pub mod keymap;
pub mod keys;
pub mod matcher;
pub mod panes;
pub mod patient_index;
pub mod popups;
pub mod terminal;
pub mod theme;

pub use app::{App, Session};
pub use terminal::run;

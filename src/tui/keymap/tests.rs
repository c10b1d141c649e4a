use super::*;
use proptest::prelude::*;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn k(s: &str) -> Key {
    s.parse().unwrap()
}

fn seq(s: &str) -> Vec<Key> {
    Key::parse_sequence(s).unwrap()
}

fn action(map: &Keymap, ctx: Context, keys: &str) -> Option<Action> {
    map.resolve(ctx, &seq(keys))
}

#[test]
fn defaults_load_without_warnings() {
    let mut map = Keymap::default();
    let warnings = file::merge_source(&mut map, DEFAULT_KEYMAP, "default.toml");
    assert_eq!(warnings, Vec::<String>::new());
    assert!(map.bindings(Context::Global).count() > 20);
}

#[test]
fn default_keys_do_what_a_clinician_expects() {
    let map = Keymap::defaults();
    let g = Context::Global;
    assert_eq!(action(&map, g, "q"), Some(Action::Quit));
    assert_eq!(action(&map, g, "?"), Some(Action::Help));
    assert_eq!(action(&map, g, ":"), Some(Action::CommandPalette));
    assert_eq!(action(&map, g, "ctrl-p"), Some(Action::CommandPalette));
    assert_eq!(action(&map, g, "/"), Some(Action::FocusSearch));
    assert_eq!(action(&map, g, "3"), Some(Action::PaneResults));
    assert_eq!(action(&map, g, "shift-tab"), Some(Action::PrevPane));
    assert_eq!(action(&map, g, "g g"), Some(Action::GoTop));
    assert_eq!(action(&map, g, "G"), Some(Action::GoBottom));
    assert_eq!(action(&map, g, "g t"), Some(Action::PaneTasks));
    assert_eq!(action(&map, g, "esc"), Some(Action::Cancel));
    assert_eq!(action(&map, Context::Results, "esc"), Some(Action::Back));
    assert_eq!(
        action(&map, Context::Results, "backspace"),
        Some(Action::Back)
    );
    // Global keys reach every pane that does not rebind them.
    assert_eq!(action(&map, Context::Tasks, "j"), Some(Action::MoveDown));
}

#[test]
fn crossterm_events_find_their_binding() {
    let map = Keymap::defaults();
    let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
    assert!(matches!(
        map.lookup(Context::Results, &[], ev.into()),
        Lookup::Action(Action::GoBottom)
    ));
    let ev = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
    assert!(matches!(
        map.lookup(Context::Search, &[], ev.into()),
        Lookup::Action(Action::PrevPane)
    ));
}

#[test]
fn first_key_of_a_sequence_is_pending_with_candidates_in_file_order() {
    let map = Keymap::defaults();
    let Lookup::Pending(cands) = map.lookup(Context::Notes, &[], k("g")) else {
        panic!("g should be pending");
    };
    let names: Vec<_> = cands.iter().map(|b| b.action.name()).collect();
    assert_eq!(
        names,
        [
            "go_top",
            "pane_summary",
            "pane_results",
            "pane_notes",
            "pane_tasks",
            "pane_search"
        ]
    );
    assert!(matches!(
        map.lookup(Context::Notes, &[k("g")], k("n")),
        Lookup::Action(Action::PaneNotes)
    ));
    assert!(matches!(
        map.lookup(Context::Notes, &[k("g")], k("z")),
        Lookup::Unbound
    ));
    assert!(matches!(
        map.lookup(Context::Global, &[], k("z")),
        Lookup::Unbound
    ));
}

#[test]
fn pane_sequences_come_before_global_ones() {
    let load = Keymap::load_str(
        "[results]\nkeymap = [ { on = \"g a\", run = \"refresh\", desc = \"Again\" }, { on = \"g s\", run = \"open\" } ]",
        "user.toml",
    );
    assert!(load.warnings.is_empty(), "{:?}", load.warnings);
    let Lookup::Pending(cands) = load.keymap.lookup(Context::Results, &[], k("g")) else {
        panic!("pending");
    };
    let first: Vec<_> = cands.iter().take(2).map(|b| b.desc.as_str()).collect();
    assert_eq!(first, ["Again", "Open the selected row"]);
    // `g s` of the pane shadows the global `g s`, so it is listed once.
    let gs = cands.iter().filter(|b| b.keys == seq("g s")).count();
    assert_eq!(gs, 1);
    assert_eq!(
        action(&load.keymap, Context::Results, "g s"),
        Some(Action::Open)
    );
    assert_eq!(
        action(&load.keymap, Context::Summary, "g s"),
        Some(Action::PaneSummary)
    );
}

#[test]
fn user_entries_replace_add_and_unbind() {
    let src = r#"
[global]
keymap = [
    { on = "q", run = "help", desc = "My help" },
    { on = "ctrl-q", run = "quit" },
    { on = "x", run = "noop" },
]
"#;
    let load = Keymap::load_str(src, "user.toml");
    assert!(load.warnings.is_empty(), "{:?}", load.warnings);
    let map = &load.keymap;
    assert_eq!(action(map, Context::Global, "q"), Some(Action::Help));
    assert_eq!(action(map, Context::Global, "ctrl-q"), Some(Action::Quit));
    assert_eq!(action(map, Context::Global, "x"), None);
    // A replaced entry keeps its place; an added one comes last.
    let global: Vec<_> = map.bindings(Context::Global).collect();
    assert_eq!(global[0].desc, "My help");
    assert_eq!(global.last().map(|b| b.keys.clone()), Some(seq("ctrl-q")));
}

#[test]
fn unbinding_a_prefix_group_frees_its_first_key() {
    let src = r#"
[global]
keymap = [
    { on = "g", run = "go_top" },
    { on = ["g", "g"], run = "noop" },
    { on = ["g", "s"], run = "noop" },
    { on = ["g", "r"], run = "noop" },
    { on = ["g", "n"], run = "noop" },
    { on = ["g", "t"], run = "noop" },
    { on = ["g", "p"], run = "noop" },
]
"#;
    let load = Keymap::load_str(src, "user.toml");
    assert!(load.warnings.is_empty(), "{:?}", load.warnings);
    assert!(matches!(
        load.keymap.lookup(Context::Global, &[], k("g")),
        Lookup::Action(Action::GoTop)
    ));
}

#[test]
fn a_bad_entry_is_skipped_with_file_and_line_and_the_rest_applies() {
    let src = r#"[global]
keymap = [
    { on = "ctrl-q", run = "quit" },
    { on = "j", run = "jump_around" },
    { on = "ctrl-", run = "quit" },
    { on = "g", run = "refresh" },
    { run = "quit" },
]
"#;
    let load = Keymap::load_str(src, "/home/u/.config/chartty/keymap.toml");
    let w = &load.warnings;
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(
        w[0].starts_with("/home/u/.config/chartty/keymap.toml:4:"),
        "{}",
        w[0]
    );
    assert!(w[0].contains("jump_around"));
    assert!(
        w[1].starts_with("/home/u/.config/chartty/keymap.toml:5:"),
        "{}",
        w[1]
    );
    assert!(
        w[2].starts_with("/home/u/.config/chartty/keymap.toml:7:"),
        "{}",
        w[2]
    );
    assert!(w[2].contains("missing `on`"));
    assert!(w[3].contains(":6:") && w[3].contains("clashes"), "{}", w[3]);
    let map = &load.keymap;
    assert_eq!(action(map, Context::Global, "ctrl-q"), Some(Action::Quit));
    assert_eq!(action(map, Context::Global, "j"), Some(Action::MoveDown));
    assert_eq!(action(map, Context::Global, "g g"), Some(Action::GoTop));
}

#[test]
fn a_broken_file_keeps_the_defaults() {
    let load = Keymap::load_str("[global]\nkeymap = [ { on = \"q\", run = ", "k.toml");
    assert_eq!(load.warnings.len(), 1);
    assert!(
        load.warnings[0].starts_with("k.toml:2:"),
        "{}",
        load.warnings[0]
    );
    assert!(load.warnings[0].contains("built-in keys stay in force"));
    assert_eq!(
        action(&load.keymap, Context::Global, "q"),
        Some(Action::Quit)
    );

    let load = Keymap::load_str("\n[global]\nkeymap = \"q\"\n", "k.toml");
    assert_eq!(load.warnings.len(), 1, "{:?}", load.warnings);
    assert!(
        load.warnings[0].starts_with("k.toml:3:"),
        "{}",
        load.warnings[0]
    );
}

#[test]
fn unknown_sections_and_fields_are_named() {
    let load = Keymap::load_str(
        "[serch]\nkeymap = []\n[global]\nkeymap = [ { on = \"Q\", run = \"quit\", descr = \"x\" } ]\n",
        "k.toml",
    );
    assert_eq!(load.warnings.len(), 2, "{:?}", load.warnings);
    assert!(
        load.warnings
            .iter()
            .any(|w| w.starts_with("k.toml:1:") && w.contains("[serch]"))
    );
    assert!(
        load.warnings
            .iter()
            .any(|w| w.starts_with("k.toml:4:") && w.contains("descr"))
    );
    assert_eq!(
        action(&load.keymap, Context::Global, "Q"),
        Some(Action::Quit)
    );
}

#[test]
fn missing_user_file_is_silent_unreadable_one_warns() {
    let dir = tempfile::tempdir().unwrap();
    let load = Keymap::load(Some(&dir.path().join("keymap.toml")));
    assert!(load.warnings.is_empty());
    let load = Keymap::load(Some(dir.path()));
    assert_eq!(load.warnings.len(), 1);
    assert_eq!(
        action(&load.keymap, Context::Global, "q"),
        Some(Action::Quit)
    );

    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        "[tasks]\nkeymap = [ { on = \"c\", run = \"refresh\" } ]\n",
    )
    .unwrap();
    let load = Keymap::load(Some(&file));
    assert!(load.warnings.is_empty());
    assert_eq!(
        action(&load.keymap, Context::Tasks, "c"),
        Some(Action::Refresh)
    );
}

#[test]
fn keys_for_lists_pane_keys_then_unshadowed_global_keys() {
    let map = Keymap::defaults();
    let show = |ks: Vec<&[Key]>| ks.iter().map(|k| display_sequence(k)).collect::<Vec<_>>();
    assert_eq!(
        show(map.keys_for(Context::Results, Action::Back)),
        ["esc", "backspace"]
    );
    assert_eq!(
        show(map.keys_for(Context::Global, Action::GoTop)),
        ["g g", "home"]
    );
    // In a pane, esc means back, so it is not a key for cancel there.
    assert!(map.keys_for(Context::Results, Action::Cancel).is_empty());
    assert_eq!(show(map.keys_for(Context::Search, Action::Cancel)), ["esc"]);
}

#[test]
fn reference_lists_every_section_and_groups_keys() {
    let text = reference(&Keymap::defaults());
    for ctx in Context::ALL {
        assert!(text.contains(&format!("## [{}]", ctx.name())));
    }
    assert!(text.contains("| `j`, `down` | `move_down` |"), "{text}");
    assert!(text.contains("| `g g`, `home` | `go_top` |"), "{text}");
    // File order: quit comes before help.
    assert!(text.find("`quit`") < text.find("`help`"));
}

fn arb_tomlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "[global]",
        "[search]",
        "[tasks]",
        "[nope]",
        "keymap",
        " = ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "on",
        "run",
        "desc",
        "\"q\"",
        "\"g\"",
        "\"g g\"",
        "\"ctrl-\"",
        "\"quit\"",
        "\"noop\"",
        "\"go_top\"",
        "\"x\"",
        "[\"g\", \"g\"]",
        "\n",
        " ",
        "=",
        "\"",
        "#",
        "1",
        "true",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn loader_never_panics_and_defaults_stay_usable(src in prop_oneof![arb_tomlish(), ".*"]) {
        let load = Keymap::load_str(&src, "fuzz.toml");
        // Whatever the file did, the help key of a pane still answers something
        // and lookups do not panic.
        for ctx in Context::ALL {
            let _ = load.keymap.lookup(ctx, &[], Key::char('?'));
            let _ = load.keymap.lookup(ctx, &[Key::char('g')], Key::char('g'));
        }
        for w in &load.warnings {
            prop_assert!(w.starts_with("fuzz.toml:"), "{}", w);
        }
        // Every section of the defaults is intact unless the file named it.
        if !src.contains("[search]") {
            prop_assert_eq!(load.keymap.resolve(Context::Search, &[Key::plain(KeyCode::Enter)]), Some(Action::Open));
        }
    }

    #[test]
    fn entries_with_valid_keys_and_actions_bind(key in "[a-z]|ctrl-[a-z]|f[1-9]", act in prop::sample::select(Action::ALL.to_vec())) {
        prop_assume!(act != Action::Noop);
        let src = format!("[notes]\nkeymap = [ {{ on = \"{key}\", run = \"{}\" }} ]\n", act.name());
        let load = Keymap::load_str(&src, "u.toml");
        prop_assert!(load.warnings.is_empty(), "{:?}", load.warnings);
        prop_assert_eq!(load.keymap.resolve(Context::Notes, &seq(&key)), Some(act));
    }
}

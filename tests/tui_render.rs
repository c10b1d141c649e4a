//! What each pane looks like at 120x40 and at 80x24, pinned with snapshots
//! of a fixed clinic built in the tests (`tests/common`): every status, mixed
//! units, an old critical value, names with diacritics, two patients of one
//! name. Deterministic: a fixed clock, UTC, a fixed reported latency, the
//! server's port masked. Styles that carry meaning (a critical value, the
//! allergy banner, a late task) are checked cell by cell, not left to the
//! text of a snapshot.

mod common;

use chartty::roles::Role;
use chartty::tui::headless::Headless;
use chartty::tui::theme::Theme;
use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Style;

const SIZES: [(u16, u16); 2] = [(120, 40), (80, 24)];

struct Screens {
    h: Headless,
    port: String,
}

impl Screens {
    fn buffer(&mut self, w: u16, ht: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(w, ht)).unwrap();
        self.h.render(&mut terminal).unwrap();
        terminal.backend().buffer().clone()
    }

    fn text(&mut self, w: u16, ht: u16) -> String {
        let buf = self.buffer(w, ht);
        let mut out = String::new();
        for y in 0..ht {
            let mut line = String::new();
            for x in 0..w {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        // Same width as any ephemeral port, so nothing shifts.
        let out = out.replace(&format!(":{}", self.port), ":XXXXX");
        // The server stamps each record with the time it was stored.
        out.lines()
            .map(|l| match l.find("\"lastUpdated\": \"") {
                Some(at) => {
                    let start = at + "\"lastUpdated\": \"".len();
                    let stamp: String = l[start..].chars().take_while(|c| *c != '"').collect();
                    l.replacen(&stamp, &"X".repeat(stamp.len()), 1)
                }
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    fn snap(&mut self, name: &str) {
        for (w, ht) in SIZES {
            let text = self.text(w, ht);
            insta::assert_snapshot!(format!("{name}_{w}x{ht}"), text);
        }
    }
}

/// The style of the first cell where `needle` starts on screen.
fn style_of(buf: &Buffer, needle: &str) -> Option<Style> {
    let area = buf.area;
    for y in 0..area.height {
        let row: Vec<String> = (0..area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        let line: String = row.concat();
        if let Some(byte) = line.find(needle) {
            // Map the byte offset back to a cell.
            let mut seen = 0;
            for (x, cell) in row.iter().enumerate() {
                if seen == byte {
                    return Some(buf[(x as u16, y)].style());
                }
                seen += cell.len();
            }
        }
    }
    None
}

/// Whether a drawn cell carries a theme slot: its colours (a slot without
/// one leaves the terminal's own) and at least its modifiers.
fn same_colours(drawn: Style, slot: Style) -> bool {
    use ratatui::style::Color;
    let colour = |c: Option<Color>| c.unwrap_or(Color::Reset);
    colour(drawn.fg) == colour(slot.fg)
        && (slot.bg.is_none() || drawn.bg == slot.bg)
        && drawn.add_modifier.contains(slot.add_modifier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pane_at_two_sizes() {
    let clinic = messy_portal().await;
    let theme = Theme::default();
    let h = app_as(&clinic.server.base_url, &settings(), Some(Role::Nurse)).await;
    let mut s = Screens {
        h,
        port: clinic.server.addr.port().to_string(),
    };

    s.snap("start");

    s.h.keys("/nguyen").unwrap();
    s.h.settle().await;
    assert_eq!(
        s.h.app.panes.search.listed().len(),
        2,
        "both patients of one name"
    );
    s.snap("search");

    open_lan(&mut s).await;
    assert_eq!(
        s.h.app.chart().and_then(|c| c.patient.id.as_deref()),
        Some(LAN)
    );
    s.snap("summary");
    let buf = s.buffer(120, 40);
    let banner = style_of(&buf, "ALLERGIES: Penicillin").expect("the allergy banner");
    assert!(
        same_colours(banner, theme.allergy),
        "{banner:?} is not {:?}",
        theme.allergy
    );
    let critical = style_of(&buf, "HH!").expect("the critical potassium is flagged");
    assert!(same_colours(critical, theme.alert_critical), "{critical:?}");
    let twin = style_of(&buf, "≡ SAME NAME AS").expect("the same-name warning");
    assert!(same_colours(twin, theme.alert_critical), "{twin:?}");

    s.h.keys("3").unwrap();
    s.snap("results");
    let buf = s.buffer(120, 40);
    let critical = style_of(&buf, "HH!").expect("a critical flag in results");
    assert!(same_colours(critical, theme.alert_critical), "{critical:?}");

    let k =
        s.h.app
            .panes
            .results
            .groups()
            .iter()
            .position(|g| g.name == "Potassium")
            .expect("potassium is listed");
    s.h.keys(&"j".repeat(k)).unwrap();
    s.h.keys("<enter>").unwrap();
    s.h.settle().await;
    s.snap("results_history");
    s.h.keys("<esc>").unwrap();

    s.h.keys("4").unwrap();
    s.snap("notes");
    let html =
        s.h.app
            .panes
            .notes
            .notes()
            .iter()
            .position(|n| n.kind == "Discharge summary")
            .expect("the HTML note is listed");
    s.h.keys(&"j".repeat(html)).unwrap();
    s.h.keys("<enter>").unwrap();
    assert!(s.h.app.panes.notes.reading().is_some());
    s.snap("note_reader");
    s.h.keys("<esc>").unwrap();

    s.h.keys("5").unwrap();
    assert_eq!(s.h.app.panes.tasks.rows().len(), 3);
    s.snap("tasks");
    let buf = s.buffer(120, 40);
    let late = style_of(&buf, "late 2 d").expect("an overdue task");
    assert!(same_colours(late, theme.overdue), "{late:?}");

    s.h.keys("g").unwrap();
    s.snap("which_key");
    s.h.keys("<esc>?").unwrap();
    s.snap("help");
    s.h.keys("<esc>2v").unwrap();
    s.snap("raw_view");
    s.h.keys("<esc>").unwrap();

    // Writing a note: the nurse's templates, then the editor under the
    // patient banner, filled from the chart.
    s.h.keys("4n").unwrap();
    s.snap("note_templates");
    s.h.keys("<enter>").unwrap();
    assert_eq!(s.h.app.focus(), chartty::tui::panes::PaneId::Editor);
    s.snap("note_editor");
    for (w, ht) in [(120, 40), (80, 24)] {
        let screen = common::screen(&mut s.h, w, ht);
        let lines: Vec<&str> = screen.lines().collect();
        assert!(
            lines[0].starts_with("NGUYỄN, THỊ LAN"),
            "the banner stays on top:\n{screen}"
        );
        assert!(lines[1].starts_with("ALLERGIES: Penicillin"), "{screen}");
        assert!(screen.contains("┏ 6 "), "{screen}");
    }

    // Locked: nothing of the patient or the note is drawn.
    s.h.keys("<c-l>").unwrap();
    s.h.settle().await;
    s.snap("lock");
    for (w, ht) in SIZES {
        let screen = s.text(w, ht);
        for gone in ["NGUYỄN", "Nguyễn", "Penicillin", "MRN", "ALLERGIES"] {
            assert!(
                !screen.contains(gone),
                "{gone} on the lock screen:\n{screen}"
            );
        }
    }

    clinic.server.stop().await;
}

/// The message view of a queue item: the patient's message with its
/// structured answers (a red flag in the alert style) and the thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_view_at_two_sizes() {
    let clinic = messy_portal().await;
    let theme = Theme::default();
    let client = reqwest::Client::new();
    let post = |ty: &str, body: serde_json::Value| {
        let req = client
            .put(format!(
                "{}/{ty}/{}",
                clinic.server.base_url,
                body["id"].as_str().unwrap()
            ))
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string());
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
        }
    };
    let lan = format!("Patient/{LAN}");
    let category = serde_json::json!([{"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]}]);
    post(
        "Communication",
        serde_json::json!({"resourceType": "Communication", "id": "m-old", "status": "completed",
            "category": category, "subject": {"reference": lan}, "sender": {"reference": lan},
            "sent": ago(20, 9),
            "payload": [{"contentString": "Is it fine to take ibuprofen with my metformin?"}]}),
    )
    .await;
    post(
        "Communication",
        serde_json::json!({"resourceType": "Communication", "id": "m-old-reply", "status": "completed",
            "category": category, "subject": {"reference": lan},
            "sender": {"reference": "Practitioner/pr-attending", "display": "Dr. Ama Mensah"},
            "inResponseTo": [{"reference": "Communication/m-old"}],
            "sent": ago(20, 14),
            "payload": [{"contentString": "Yes, for a few days. Take it with food."}]}),
    )
    .await;
    post(
        "Communication",
        serde_json::json!({"resourceType": "Communication", "id": "m-chest", "status": "in-progress",
            "category": category, "subject": {"reference": lan}, "sender": {"reference": lan},
            "sent": ago(0, 10),
            "payload": [{"contentString": "Chest feels tight since this morning, worse on stairs."},
                        {"contentReference": {"reference": "#answers"}}],
            "contained": [common::chest_tightness_answers(7)]}),
    )
    .await;
    // The STAT task of the fixed clinic now points at the message.
    let mut task: serde_json::Value = client
        .get(format!("{}/Task/t-stat", clinic.server.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    task["focus"] = serde_json::json!({"reference": "Communication/m-chest"});
    post("Task", task).await;

    let h = app_as(&clinic.server.base_url, &settings(), Some(Role::Nurse)).await;
    let mut s = Screens {
        h,
        port: clinic.server.addr.port().to_string(),
    };
    assert_eq!(s.h.app.focus(), chartty::tui::panes::PaneId::Tasks);
    assert_eq!(s.h.app.panes.tasks.rows()[0].task_id, "t-stat");
    s.h.keys("<space>").unwrap();
    s.snap("queue_marked");
    s.h.keys("k<space>k<enter>").unwrap();
    assert!(s.h.app.panes.tasks.marked().is_empty());
    s.h.settle().await;
    s.snap("message_view");
    let buf = s.buffer(120, 40);
    let flag = style_of(&buf, "chest pain YES").expect("the red flag is shown");
    assert!(same_colours(flag, theme.alert_critical), "{flag:?}");
    s.h.keys("c").unwrap();
    assert!(
        s.h.app
            .notice()
            .is_some_and(|n| n.text.contains("which practitioner")),
        "no claim without knowing who is signed in"
    );

    // Time on the patient's messages: 10 min on a closed task two days
    // ago (8 min nine days ago is outside the week), and two minutes of
    // work here now.
    let entry = |id: &str, who: &str, secs: u64, at: String| {
        serde_json::json!({"id": id, "url": "urn:chartty:work-time", "extension": [
            {"url": "who", "valueReference": {"reference": who}},
            {"url": "seconds", "valueInteger": secs},
            {"url": "at", "valueDateTime": at}]})
    };
    post(
        "Task",
        serde_json::json!({"resourceType": "Task", "id": "t-lan-done", "status": "completed",
            "intent": "order", "description": "Ibuprofen with metformin",
            "code": {"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]},
            "for": {"reference": lan}, "focus": {"reference": "Communication/m-old"},
            "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}],
            "extension": [
                entry("wt-a", "Practitioner/pr-attending", 600, ago(2, 9)),
                entry("wt-b", "Practitioner/pr-attending", 480, ago(9, 9))]}),
    )
    .await;
    s.h.keys("<esc>").unwrap();
    let t0 = std::time::Instant::now() + std::time::Duration::from_secs(1);
    s.h.tick(t0);
    s.h.keys("<enter>").unwrap();
    s.h.settle().await;
    for i in 1..=4 {
        s.h.tick(t0 + std::time::Duration::from_secs(30 * i));
        s.h.settle().await;
        s.h.keys("gg").unwrap();
    }
    s.snap("message_view_time");
    clinic.server.stop().await;
}

/// Low-bandwidth mode: the same chart with ASCII borders and marks, and
/// nothing lost: the allergy banner, the critical value and the same-name
/// warning keep their words and their styles; the status bar says the
/// mode is on. Switched off at run time, the normal borders come back.
/// Open Nguyễn Thị Lan's chart from the list on screen.
async fn open_lan(s: &mut Screens) {
    let pos =
        s.h.app
            .panes
            .search
            .listed()
            .iter()
            .position(|r| r.id == LAN)
            .unwrap();
    s.h.keys(&"<down>".repeat(pos)).unwrap();
    s.h.keys("<enter>").unwrap();
    s.h.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_in_low_bandwidth_mode() {
    let clinic = messy_portal().await;
    let theme = Theme::default();
    let settings = chartty::config::Settings {
        low_bandwidth: true,
        ..settings()
    };
    let h = app_as(&clinic.server.base_url, &settings, Some(Role::Nurse)).await;
    let mut s = Screens {
        h,
        port: clinic.server.addr.port().to_string(),
    };
    assert!(s.h.app.low_bandwidth());
    s.h.keys("/nguyen").unwrap();
    s.h.settle().await;
    open_lan(&mut s).await;
    s.snap("low_bandwidth_summary");
    for (w, ht) in SIZES {
        let screen = s.text(w, ht);
        let lines: Vec<&str> = screen.lines().collect();
        assert!(lines[3].starts_with("+ 2 Summary ="), "{screen}");
        for fancy in ['┏', '━', '┃', '┌', '─', '│', '●', '○'] {
            assert!(!screen.contains(fancy), "{fancy} in:\n{screen}");
        }
        assert!(
            lines.last().is_some_and(|l| l.contains("low-bw")),
            "{screen}"
        );
    }
    let buf = s.buffer(120, 40);
    let banner = style_of(&buf, "ALLERGIES: Penicillin").expect("the allergy banner");
    assert!(same_colours(banner, theme.allergy), "{banner:?}");
    let critical = style_of(&buf, "HH!").expect("the critical potassium is flagged");
    assert!(same_colours(critical, theme.alert_critical), "{critical:?}");
    let twin = style_of(&buf, "SAME NAME AS").expect("the same-name warning");
    assert!(same_colours(twin, theme.alert_critical), "{twin:?}");

    // Results: the selected row is marked by `>` alone, not reversed.
    s.h.keys("3jj").unwrap();
    s.snap("low_bandwidth_results");
    let buf = s.buffer(120, 40);
    let text = s.text(120, 40);
    let marked: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("|>") || l.starts_with("=>") || l.contains("|>"))
        .collect();
    assert_eq!(marked.len(), 1, "one row marked: {text}");
    let y = marked[0].0 as u16;
    assert!(
        (1..119).all(|x| !buf[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)),
        "nothing reversed on the selected row: {text}"
    );

    s.h.app.set_low_bandwidth(false);
    let screen = s.text(120, 40);
    assert!(screen.contains("┏ 3 Results ━"), "{screen}");
    assert!(!screen.contains("low-bw"), "{screen}");
    clinic.server.stop().await;
}

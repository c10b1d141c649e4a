//! A QR code of a sign-in address, drawn with half blocks (two module rows
//! per line), for a phone to open; only where the terminal is big enough.

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the code (the standard asks for 4; 2 is
/// what phone cameras need in practice, and saves lines).
const QUIET: usize = 2;

/// The code for `text` in at most `cols` x `rows` cells, else `None`.
/// Light modules are drawn as blocks: on the usual dark terminal the code
/// reads as dark on light, as scanners expect.
pub fn draw(text: &str, cols: u16, rows: u16) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    let width = code.width();
    let side = width + 2 * QUIET;
    if side > usize::from(cols) || side.div_ceil(2) > usize::from(rows) {
        return None;
    }
    let colors = code.to_colors();
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET || y < QUIET || x >= width + QUIET || y >= width + QUIET {
            return true;
        }
        colors[(y - QUIET) * width + (x - QUIET)] == Color::Light
    };
    let mut out = String::new();
    for y in (0..side).step_by(2) {
        for x in 0..side {
            let top = light(x, y);
            let bottom = y + 1 >= side || light(x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_address_fits_a_small_terminal_a_long_one_does_not() {
        let url = "http://127.0.0.1:8080/auth/device/verify?user_code=BCDF-GHJK";
        let qr = draw(url, 80, 24).expect("fits 80x24");
        let lines: Vec<&str> = qr.lines().collect();
        let side = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == side));
        assert_eq!(lines.len(), side.div_ceil(2));
        // The quiet zone is light all round.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("██") && l.ends_with("██"))
        );
        let long = format!("https://idp.example.org/authorize?{}", "x".repeat(600));
        assert!(draw(&long, 80, 24).is_none());
        assert!(draw(&long, 300, 200).is_some());
    }
}

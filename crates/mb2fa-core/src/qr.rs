//! The QR code of the otpauth URI, as terminal art or as an SVG file.
//!
//! A phone camera needs dark modules on a light background. Terminals differ
//! (light or dark themes), so on a TTY we set the colours explicitly (black on
//! bright white); without colours, ink stands for dark modules, which is right
//! on paper and light themes, and `invert` flips it for dark themes.
//!
//! Error correction L keeps a typical URI at version 6 (41 modules): with the
//! 2-module quiet zone, 45 columns by 23 rows of half blocks, inside 80x24.

use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode, Version};

use crate::error::{Error, Result};

/// Modules of light margin around the symbol (ISO asks 4; 2 is enough on a
/// screen and keeps the art inside 80x24).
pub const QUIET_ZONE: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unicode half blocks: two modules per character cell.
    Unicode,
    /// `##` and spaces: one module is two characters wide, one line high.
    Ascii,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Render {
    pub style: Style,
    /// Set ANSI colours (black on white) around the art.
    pub color: bool,
    /// Without colours: draw light modules instead of dark ones.
    pub invert: bool,
}

const BLACK_ON_WHITE: &str = "\x1b[38;5;16;48;5;231m";
const RESET: &str = "\x1b[0m";

/// The smallest symbol at level L. A typical otpauth URI is 135 bytes, one
/// more than version 6 holds in byte mode, but its 32-character base32 secret
/// fits QR's denser alphanumeric mode. The crate's mode optimiser sometimes
/// splits the URI badly (version 7, which no longer fits 80x24), so long
/// alphanumeric runs are also encoded as their own segments by hand, and the
/// smallest of the candidates wins.
fn smallest_code(data: &[u8]) -> Result<QrCode> {
    let segments = segments(data);
    let by_hand = (1..=40).find_map(|v| {
        let mut bits = Bits::new(Version::Normal(v));
        for (alnum, part) in &segments {
            if *alnum {
                bits.push_alphanumeric_data(part).ok()?;
            } else {
                bits.push_byte_data(part).ok()?;
            }
        }
        bits.push_terminator(EcLevel::L).ok()?;
        QrCode::with_bits(bits, EcLevel::L).ok()
    });
    let optimised = QrCode::with_error_correction_level(data, EcLevel::L).ok();
    [by_hand, optimised]
        .into_iter()
        .flatten()
        .min_by_key(QrCode::width)
        .ok_or_else(|| Error::usage("cannot make a QR code: the URI is too long"))
}

/// Split into `(alphanumeric?, bytes)` runs; only runs of 16 or more QR
/// alphanumeric characters are worth a segment header of their own.
fn segments(data: &[u8]) -> Vec<(bool, &[u8])> {
    const MIN_RUN: usize = 16;
    let is_alnum =
        |b: &u8| b.is_ascii_digit() || b.is_ascii_uppercase() || b" $%*+-./:".contains(b);
    let mut out: Vec<(bool, &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        let run = data[i..].iter().take_while(|b| is_alnum(b)).count();
        if run >= MIN_RUN {
            if start < i {
                out.push((false, &data[start..i]));
            }
            out.push((true, &data[i..i + run]));
            i += run;
            start = i;
        } else {
            i += run.max(1);
        }
    }
    if start < data.len() {
        out.push((false, &data[start..]));
    }
    out
}

/// The symbol's modules, quiet zone included: `true` is dark.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    pub fn encode(data: &str) -> Result<Matrix> {
        let code = smallest_code(data.as_bytes())?;
        let inner = code.width();
        let width = inner + 2 * QUIET_ZONE;
        let colors = code.to_colors();
        let mut dark = vec![false; width * width];
        for y in 0..inner {
            for x in 0..inner {
                dark[(y + QUIET_ZONE) * width + x + QUIET_ZONE] =
                    colors[y * inner + x] == Color::Dark;
            }
        }
        Ok(Matrix { width, dark })
    }

    /// Is the module at (x, y) dark? Outside the matrix counts as light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// Terminal art, one `\n`-terminated line per text row.
    pub fn render(&self, how: Render) -> String {
        // With explicit colours, glyphs are black ink on white: ink = dark.
        let ink = |x: usize, y: usize| self.is_dark(x, y) != (how.invert && !how.color);
        let mut out = String::new();
        let rows: Vec<String> = match how.style {
            Style::Unicode => (0..self.width)
                .step_by(2)
                .map(|y| {
                    (0..self.width)
                        .map(|x| match (ink(x, y), ink(x, y + 1)) {
                            (true, true) => '█',
                            (true, false) => '▀',
                            (false, true) => '▄',
                            (false, false) => ' ',
                        })
                        .collect()
                })
                .collect(),
            Style::Ascii => (0..self.width)
                .map(|y| {
                    (0..self.width)
                        .map(|x| if ink(x, y) { "##" } else { "  " })
                        .collect()
                })
                .collect(),
        };
        for row in rows {
            if how.color {
                out.push_str(BLACK_ON_WHITE);
                out.push_str(&row);
                out.push_str(RESET);
            } else {
                out.push_str(&row);
            }
            out.push('\n');
        }
        out
    }

    /// A standalone SVG (for mailing to a user), 8 px per module.
    pub fn svg(&self) -> String {
        const SCALE: usize = 8;
        let size = self.width * SCALE;
        let mut path = String::new();
        for y in 0..self.width {
            for x in 0..self.width {
                if self.is_dark(x, y) {
                    path.push_str(&format!("M{x} {y}h1v1h-1z"));
                }
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {w} {w}\" shape-rendering=\"crispEdges\">\n<rect width=\"{w}\" height=\"{w}\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"{path}\"/>\n</svg>\n",
            w = self.width
        )
    }
}

/// Read terminal art back into modules (`true` = ink), for tests and for the
/// `decode` check in the test suite. ANSI colour sequences are skipped.
pub fn parse_art(art: &str, style: Style) -> Vec<Vec<bool>> {
    let strip = |line: &str| -> String {
        let mut out = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let mut grid = Vec::new();
    for line in art.lines() {
        let line = strip(line);
        match style {
            Style::Unicode => {
                let (mut top, mut bottom) = (Vec::new(), Vec::new());
                for c in line.chars() {
                    let (t, b) = match c {
                        '█' => (true, true),
                        '▀' => (true, false),
                        '▄' => (false, true),
                        _ => (false, false),
                    };
                    top.push(t);
                    bottom.push(b);
                }
                grid.push(top);
                grid.push(bottom);
            }
            Style::Ascii => {
                let chars: Vec<char> = line.chars().collect();
                grid.push(chars.chunks(2).map(|p| p[0] == '#').collect());
            }
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typical URI (alice@example.com, default issuer): 134 bytes.
    const URI: &str = "otpauth://totp/Mailborder:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Mailborder&algorithm=SHA1&digits=6&period=30";
    const LONG_URI: &str = "otpauth://totp/Mailborder%20-%20mail.example.com:firstname.lastname@subdomain.example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Mailborder%20-%20mail.example.com&algorithm=SHA1&digits=6&period=30";

    /// Decode a module grid (`true` = dark) with rqrr, an independent decoder.
    fn decode(grid: &[Vec<bool>]) -> String {
        const PX: usize = 6;
        let h = grid.len();
        let w = grid.iter().map(Vec::len).max().unwrap_or(0);
        // Pad with a light margin as a screen would show.
        let (iw, ih) = ((w + 8) * PX, (h + 8) * PX);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(iw, ih, |x, y| {
            let (mx, my) = ((x / PX).wrapping_sub(4), (y / PX).wrapping_sub(4));
            let dark = grid
                .get(my)
                .and_then(|r| r.get(mx))
                .copied()
                .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code expected");
        grids[0].decode().expect("decode").1
    }

    #[test]
    fn unicode_art_decodes_to_the_uri_and_fits_80x24() {
        let m = Matrix::encode(URI).expect("encode");
        let art = m.render(Render {
            style: Style::Unicode,
            color: false,
            invert: false,
        });
        assert!(art.lines().count() <= 23, "{} rows", art.lines().count());
        assert!(art.lines().all(|l| l.chars().count() <= 80));
        assert_eq!(decode(&parse_art(&art, Style::Unicode)), URI);
        // A long email and issuer make a bigger symbol that still decodes.
        let long = Matrix::encode(LONG_URI).expect("encode");
        let art = long.render(Render {
            style: Style::Unicode,
            color: false,
            invert: false,
        });
        assert_eq!(decode(&parse_art(&art, Style::Unicode)), LONG_URI);
    }

    #[test]
    fn segments_cover_the_data_in_order() {
        let uri = URI.as_bytes();
        let segs = segments(uri);
        let joined: Vec<u8> = segs.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        assert_eq!(joined, uri);
        assert_eq!(segs.iter().filter(|(a, _)| *a).count(), 1, "the secret");
        assert_eq!(segments(b"abc"), vec![(false, &b"abc"[..])]);
    }

    #[test]
    fn uris_the_mode_optimiser_made_too_big_fit_version_6() {
        for uri in [
            "otpauth://totp/Mailborder:alicc@example.com?secret=K3GCBCV47CJY5OECUB4CKM73NV3PIJ6G&issuer=Mailborder&algorithm=SHA1&digits=6&period=30",
            "otpauth://totp/Mailborder:alice@example.com?secret=WPCIC7YWXR7CVM6LGBI5UGWWX2HTT5A2&issuer=Mailborder&algorithm=SHA1&digits=6&period=30",
        ] {
            let m = Matrix::encode(uri).expect("encode");
            assert_eq!(m.width, 41 + 2 * QUIET_ZONE, "{uri}");
            let art = m.render(Render {
                style: Style::Unicode,
                color: false,
                invert: false,
            });
            assert_eq!(decode(&parse_art(&art, Style::Unicode)), uri);
        }
    }

    #[test]
    fn random_secrets_always_fit_80x24_for_a_typical_email() {
        for _ in 0..200 {
            let secret = crate::secret::Secret::generate().expect("rng");
            let uri = crate::uri::otpauth_uri(
                "Mailborder",
                "alice@example.com",
                &secret,
                &crate::totp::TotpParams::default(),
            );
            let m = Matrix::encode(&uri).expect("encode");
            assert!(m.width <= 45, "{} modules", m.width);
        }
    }

    #[test]
    fn ascii_and_coloured_art_decode_to_the_uri() {
        let m = Matrix::encode(URI).expect("encode");
        let ascii = m.render(Render {
            style: Style::Ascii,
            color: false,
            invert: false,
        });
        assert!(ascii.is_ascii());
        assert_eq!(decode(&parse_art(&ascii, Style::Ascii)), URI);
        let coloured = m.render(Render {
            style: Style::Unicode,
            color: true,
            invert: true,
        });
        assert!(coloured.contains(BLACK_ON_WHITE));
        assert_eq!(decode(&parse_art(&coloured, Style::Unicode)), URI);
    }

    #[test]
    fn inverted_art_is_the_negative() {
        let m = Matrix::encode(URI).expect("encode");
        let inv = m.render(Render {
            style: Style::Ascii,
            color: false,
            invert: true,
        });
        let grid = parse_art(&inv, Style::Ascii);
        let negative: Vec<Vec<bool>> = grid
            .iter()
            .map(|r| r.iter().map(|d| !d).collect())
            .collect();
        assert_eq!(decode(&negative), URI);
    }

    #[test]
    fn quiet_zone_is_light() {
        let m = Matrix::encode(URI).expect("encode");
        for i in 0..m.width {
            for q in 0..QUIET_ZONE {
                assert!(!m.is_dark(i, q) && !m.is_dark(q, i));
                assert!(!m.is_dark(i, m.width - 1 - q) && !m.is_dark(m.width - 1 - q, i));
            }
        }
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let m = Matrix::encode(URI).expect("encode");
        let svg = m.svg();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("h1v1h-1z").count(),
            m.dark.iter().filter(|d| **d).count()
        );
    }
}

//! The QR oracle: terminal art and SVG read back into modules and decoded
//! with rqrr (not the product's QR encoder).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrStyle {
    /// Half blocks: each character is two modules, top and bottom.
    Unicode,
    /// `##` for a dark module, two spaces for a light one; a line per row.
    Ascii,
}

/// Remove ANSI escape sequences (`ESC [ ... final`) from `s`.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn art_char(c: char, style: QrStyle) -> bool {
    match style {
        QrStyle::Unicode => matches!(c, '█' | '▀' | '▄' | ' '),
        QrStyle::Ascii => matches!(c, '#' | ' '),
    }
}

fn has_ink(line: &str, style: QrStyle) -> bool {
    line.chars().any(|c| c != ' ') && line.chars().all(|c| art_char(c, style))
}

/// The QR art in human output: the first run of lines made only of art
/// characters that holds ink, widened by up to `context` whitespace-only
/// lines on each side (the quiet zone above and below, where the renderer
/// prints it). ANSI sequences are stripped. Panics when there is no art.
pub fn art_lines(text: &str, style: QrStyle, context: usize) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(strip_ansi).collect();
    let start = lines
        .iter()
        .position(|l| has_ink(l, style))
        .unwrap_or_else(|| panic!("no {style:?} QR art in:\n{text}"));
    let mut end = start;
    while end + 1 < lines.len() && lines[end + 1].chars().all(|c| art_char(c, style)) {
        end += 1;
    }
    while !has_ink(&lines[end], style) {
        end -= 1;
    }
    let blank = |l: &String| l.chars().all(|c| c == ' ');
    let mut first = start;
    while first > 0 && start - first < context && blank(&lines[first - 1]) {
        first -= 1;
    }
    let mut last = end;
    while last + 1 < lines.len() && last - end < context && blank(&lines[last + 1]) {
        last += 1;
    }
    lines[first..=last].to_vec()
}

/// Turn art lines into modules (`true` = ink). In ASCII mode ink must come
/// in `##` pairs aligned on the symbol's left edge.
pub fn art_to_modules(lines: &[String], style: QrStyle) -> Vec<Vec<bool>> {
    match style {
        QrStyle::Unicode => lines
            .iter()
            .flat_map(|l| {
                let top = l.chars().map(|c| matches!(c, '█' | '▀')).collect();
                let bottom = l.chars().map(|c| matches!(c, '█' | '▄')).collect();
                [top, bottom]
            })
            .collect(),
        QrStyle::Ascii => {
            let chars: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
            // The left edge of the art (ink in the left finder pattern, or the
            // quiet zone when inverted) fixes where module pairs begin.
            let edge = chars
                .iter()
                .filter_map(|l| l.iter().position(|c| *c == '#'))
                .min()
                .unwrap_or(0);
            let lead = edge % 2;
            chars
                .iter()
                .map(|l| {
                    let body = if l.len() >= lead { &l[lead..] } else { &[][..] };
                    body.chunks(2)
                        .map(|pair| {
                            let dark = pair.iter().filter(|c| **c == '#').count();
                            assert!(
                                dark == 0 || dark == pair.len() && pair.len() == 2,
                                "ASCII art must draw a module as `##` or two spaces: {:?}",
                                l.iter().collect::<String>()
                            );
                            dark == 2
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// The negative of a module grid.
pub fn invert(grid: &[Vec<bool>]) -> Vec<Vec<bool>> {
    grid.iter()
        .map(|r| r.iter().map(|d| !d).collect())
        .collect()
}

/// Light modules around the dark ones: (top, left, bottom) counts within the
/// grid. Rows may be ragged (trailing light modules trimmed).
pub fn quiet_zone(grid: &[Vec<bool>]) -> (usize, usize, usize) {
    let dark_rows: Vec<usize> = (0..grid.len())
        .filter(|y| grid[*y].iter().any(|d| *d))
        .collect();
    let (Some(first), Some(last)) = (dark_rows.first(), dark_rows.last()) else {
        return (0, 0, 0);
    };
    let left = grid
        .iter()
        .filter_map(|r| r.iter().position(|d| *d))
        .min()
        .unwrap_or(0);
    (*first, left, grid.len() - 1 - last)
}

/// Decode a module grid (`true` = dark) with rqrr: every QR code found.
/// The grid is drawn at 6 px per module on a light margin of 4 modules.
pub fn decode_modules(grid: &[Vec<bool>]) -> Vec<Result<String, String>> {
    const PX: usize = 6;
    const MARGIN: usize = 4;
    let h = grid.len();
    let w = grid.iter().map(Vec::len).max().unwrap_or(0);
    let (iw, ih) = ((w + 2 * MARGIN) * PX, (h + 2 * MARGIN) * PX);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(iw, ih, |x, y| {
        let (mx, my) = (x / PX, y / PX);
        let dark = mx >= MARGIN
            && my >= MARGIN
            && grid
                .get(my - MARGIN)
                .and_then(|r| r.get(mx - MARGIN))
                .copied()
                .unwrap_or(false);
        if dark { 0 } else { 255 }
    });
    img.detect_grids()
        .iter()
        .map(|g| g.decode().map(|(_, s)| s).map_err(|e| format!("{e:?}")))
        .collect()
}

/// Decode a grid that must hold exactly one readable QR code.
#[track_caller]
pub fn decode_one(grid: &[Vec<bool>]) -> String {
    let found = decode_modules(grid);
    assert_eq!(found.len(), 1, "exactly one QR code expected: {found:?}");
    found
        .into_iter()
        .next()
        .expect("one")
        .unwrap_or_else(|e| panic!("the QR code does not decode: {e}"))
}

/// Decode the QR art in a tool's human output.
#[track_caller]
pub fn decode_art(text: &str, style: QrStyle) -> String {
    decode_one(&art_to_modules(&art_lines(text, style, 0), style))
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before = rest[..at].chars().last();
        let after = &rest[at + name.len()..];
        if before.is_some_and(char::is_whitespace) && after.starts_with("=\"") {
            let value = &after[2..];
            return value.find('"').map(|end| &value[..end]);
        }
        rest = &rest[at + name.len()..];
    }
}

fn light_fill(fill: Option<&str>) -> bool {
    matches!(
        fill.map(str::to_ascii_lowercase).as_deref(),
        Some("#fff" | "#ffffff" | "white" | "none" | "transparent")
    )
}

fn path_boxes(d: &str) -> Vec<(f64, f64, f64, f64)> {
    // Axis-aligned subpaths only (M/m, H/h, V/v, L/l, Z/z): each subpath is
    // taken as the rectangle it bounds, which is how QR SVGs draw modules.
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for c in d.chars() {
        if c.is_ascii_alphabetic() {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            tokens.push(c.to_string());
        } else if c == ',' || c.is_whitespace() || (c == '-' && !cur.is_empty()) {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            if c == '-' {
                cur.push(c);
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let mut boxes = Vec::new();
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut start = (0.0f64, 0.0f64);
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut cmd = 'M';
    let mut i = 0;
    let flush = |points: &mut Vec<(f64, f64)>, boxes: &mut Vec<(f64, f64, f64, f64)>| {
        if points.len() > 1 {
            let x0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let x1 = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let y0 = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let y1 = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            boxes.push((x0, y0, x1, y1));
        }
        points.clear();
    };
    let num = |t: &str| -> f64 {
        t.parse()
            .unwrap_or_else(|_| panic!("unsupported SVG path token {t:?}"))
    };
    while i < tokens.len() {
        let t = &tokens[i];
        if t.len() == 1 && t.chars().all(|c| c.is_ascii_alphabetic()) {
            cmd = t.chars().next().expect("command");
            i += 1;
            if cmd == 'Z' || cmd == 'z' {
                flush(&mut points, &mut boxes);
                (x, y) = start;
            }
            continue;
        }
        match cmd {
            'M' | 'm' | 'L' | 'l' => {
                let (a, b) = (num(&tokens[i]), num(&tokens[i + 1]));
                i += 2;
                if cmd.is_ascii_lowercase() {
                    x += a;
                    y += b;
                } else {
                    (x, y) = (a, b);
                }
                if cmd == 'M' || cmd == 'm' {
                    flush(&mut points, &mut boxes);
                    start = (x, y);
                    cmd = if cmd == 'M' { 'L' } else { 'l' };
                }
            }
            'H' => (x, i) = (num(t), i + 1),
            'h' => (x, i) = (x + num(t), i + 1),
            'V' => (y, i) = (num(t), i + 1),
            'v' => (y, i) = (y + num(t), i + 1),
            other => panic!("unsupported SVG path command {other:?}"),
        }
        points.push((x, y));
    }
    flush(&mut points, &mut boxes);
    boxes
}

/// Read the dark rectangles (`<rect>` and axis-aligned `<path>`s with a dark
/// fill) of a QR SVG back into modules.
pub fn svg_to_modules(svg: &str) -> Vec<Vec<bool>> {
    let mut boxes = Vec::new();
    for piece in svg.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or("");
        let fill = attr(tag, "fill");
        if tag.starts_with("rect") && !light_fill(fill) {
            let n = |k: &str| attr(tag, k).map_or(0.0, |v| v.parse::<f64>().unwrap_or(0.0));
            let (x, y) = (n("x"), n("y"));
            boxes.push((x, y, x + n("width"), y + n("height")));
        } else if tag.starts_with("path")
            && !light_fill(fill)
            && let Some(d) = attr(tag, "d")
        {
            boxes.extend(path_boxes(d));
        }
    }
    assert!(!boxes.is_empty(), "no dark shapes in the SVG:\n{svg}");
    let module = boxes
        .iter()
        .flat_map(|b| [b.2 - b.0, b.3 - b.1])
        .filter(|s| *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    let cells = |v: f64| (v / module).round() as usize;
    let w = boxes.iter().map(|b| cells(b.2)).max().unwrap_or(0);
    let h = boxes.iter().map(|b| cells(b.3)).max().unwrap_or(0);
    let mut grid = vec![vec![false; w]; h];
    for (x0, y0, x1, y1) in boxes {
        for row in grid.iter_mut().take(cells(y1)).skip(cells(y0)) {
            for cell in row.iter_mut().take(cells(x1)).skip(cells(x0)) {
                *cell = true;
            }
        }
    }
    grid
}

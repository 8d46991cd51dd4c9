//! Turns criterion's results into the ratio tables of the README: reads each
//! benchmark's median from `<criterion dir>/<group>/<bench>/new/estimates.json`
//! (criterion's own output) and prints GB/s, M events/s and the ratio of our
//! decoder or encoder to the fastest peer.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::decoders::Kind;

/// One line of a table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Contender name.
    pub name: String,
    /// Ours, peer or limit.
    pub kind: Kind,
    /// Median time per iteration, in nanoseconds, if measured.
    pub median_ns: Option<f64>,
    /// A remark (why it was not measured, how it was measured).
    pub note: String,
}

/// Where criterion writes its results, found the way criterion finds it:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the target
/// directory this benchmark executable was built in.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // target/<profile>/deps/<exe>
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median (ns per iteration) criterion estimated for `group`/`bench` in
/// the latest run, if there is one.
pub fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("median")?.get("point_estimate")?.as_f64()
}

/// The columns of a decode or encode table.
const TABLE_COLUMNS: &[&str] = &[
    "contender",
    "median time",
    "GB/s",
    "M events/s",
    "speed vs sse-proto",
    "note",
];

/// The columns of a client-receive table.
const CLIENT_COLUMNS: &[&str] = &[
    "contender",
    "median time",
    "M events/s",
    "MB/s",
    "speed vs fastest peer",
    "client CPU/run",
    "CPU vs fastest peer",
    "note",
];

/// Renders one group as a Markdown table: time, GB/s (10^9 bytes/s), M
/// events/s, and for ours the ratio to the fastest peer; for peers and
/// limits their speed relative to ours.
pub fn table(title: &str, bytes: usize, events: usize, rows: &[Row], target: f64) -> String {
    let mut out = heading(title, bytes, events, target, TABLE_COLUMNS);
    let ours = ours_median(rows);
    let best_peer = fastest_peer(rows);
    // GB/s (10^9 bytes/s, 3 decimals), then M events/s (2 decimals).
    let rates = [(bytes as f64, 1e9, 3), (events as f64, 1e6, 2)];
    for r in rows {
        let cells = speed_cells(r.median_ns, &rates, ours);
        push_row(&mut out, &r.name, &cells, &r.note);
    }
    out.push_str(&verdict("sse-proto", ours, best_peer, target));
    // Our other entry points, each against the same peer.
    for r in rows.iter().filter(|r| r.kind == Kind::Ours).skip(1) {
        if let (Some(o), Some((p, name))) = (r.median_ns, best_peer) {
            let _ = writeln!(out, "\n{} / fastest peer ({name}): {:.2}x", r.name, p / o);
        }
    }
    let any_peer = rows
        .iter()
        .filter(|r| matches!(r.kind, Kind::Peer | Kind::PeerFailsProbes))
        .filter_map(|r| r.median_ns.map(|t| (t, r.name.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let (Some(o), Some((p, name))) = (ours, any_peer) {
        if best_peer.is_none_or(|(b, _)| p < b) {
            let _ = writeln!(
                out,
                "\nFastest peer counting those that fail conformance probes: {name}, sse-proto / it: **{:.2}x**.",
                p / o
            );
        }
    }
    let limit = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.median_ns)
    };
    if let (Some(o), Some(memcpy), Some(memchr)) =
        (ours, limit("limit_memcpy"), limit("limit_memchr"))
    {
        let _ = writeln!(
            out,
            "\nsse-proto takes {:.2}x the time of memcpy and {:.2}x the time of the memchr scan.",
            o / memcpy,
            o / memchr
        );
    }
    out
}

/// Renders a client-receive group as a Markdown table: time per run, M
/// events/s, MB/s (10^6 bytes/s) and each row's speed relative to the
/// fastest peer, then the client thread's CPU time per run (`cpu_ns`, one
/// entry per row, if measured) and the verdict of ours against `target`.
pub fn client_table(
    title: &str,
    bytes: usize,
    events: usize,
    rows: &[Row],
    cpu_ns: &[Option<f64>],
    target: f64,
) -> String {
    let mut out = heading(title, bytes, events, target, CLIENT_COLUMNS);
    let ours = ours_median(rows);
    let best_peer = fastest_peer(rows);
    let cpu_of = |i: usize| cpu_ns.get(i).copied().flatten();
    // The peer whose client thread used the least CPU per run.
    let best_peer_cpu = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == Kind::Peer)
        .filter_map(|(i, _)| cpu_of(i))
        .min_by(f64::total_cmp);
    // M events/s (2 decimals), then MB/s (10^6 bytes/s, no decimals).
    let rates = [(events as f64, 1e6, 2), (bytes as f64, 1e6, 0)];
    for (i, r) in rows.iter().enumerate() {
        let (cpu, cpu_vs) = match cpu_of(i) {
            Some(c) => (
                human_time(c),
                best_peer_cpu.map_or(String::from("-"), |p| format!("{:.2}x", p / c)),
            ),
            None => (String::from("-"), String::from("-")),
        };
        let mut cells = speed_cells(r.median_ns, &rates, best_peer.map(|(p, _)| p));
        cells.extend([cpu, cpu_vs]);
        push_row(&mut out, &r.name, &cells, &r.note);
    }
    out.push_str(&verdict("ours", ours, best_peer, target));
    let ours_cpu = rows
        .iter()
        .position(|r| r.kind == Kind::Ours)
        .and_then(cpu_of);
    if let (Some(o), Some(p)) = (ours_cpu, best_peer_cpu) {
        let _ = writeln!(
            out,
            "\nClient-thread CPU per run: the leanest peer uses **{:.2}x** what ours does.",
            p / o
        );
    }
    out
}

fn human_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Prints `text` and appends it to `<criterion dir>/<file>`.
pub fn emit(file: &str, text: &str) {
    println!("{text}");
    let dir = criterion_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(file), text);
}

/// The heading of a results table, then its header row and alignment row:
/// the first and last columns (the name, the note) left-aligned, the figures
/// between them right-aligned.
fn heading(title: &str, bytes: usize, events: usize, target: f64, columns: &[&str]) -> String {
    let mut out = format!(
        "\n### {title} ({bytes} bytes, {events} events; target: >= {target}x fastest peer)\n\n"
    );
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let figures = columns.len().saturating_sub(2);
    let _ = writeln!(out, "|---|{}---|", "---:|".repeat(figures));
    out
}

/// Appends one table row: the contender's name, its figures, and the note.
fn push_row(out: &mut String, name: &str, cells: &[String], note: &str) {
    let _ = write!(out, "| {name} |");
    for cell in cells {
        let _ = write!(out, " {cell} |");
    }
    let _ = writeln!(out, " {note} |");
}

/// A row's speed figures: its median time, each of `rates` (an amount per
/// run, given per second in units of the second number, with the third's
/// decimals), then its speed relative to `reference` (the reference's
/// median over this one); all `-` when it was not measured.
fn speed_cells(
    median_ns: Option<f64>,
    rates: &[(f64, f64, usize)],
    reference: Option<f64>,
) -> Vec<String> {
    let Some(ns) = median_ns else {
        return vec![String::from("-"); rates.len() + 2];
    };
    let secs = ns / 1e9;
    let mut cells = vec![human_time(ns)];
    cells.extend(
        rates
            .iter()
            .map(|&(amount, unit, decimals)| format!("{:.decimals$}", amount / secs / unit)),
    );
    cells.push(reference.map_or(String::from("-"), |r| format!("{:.2}x", r / ns)));
    cells
}

/// Our median time per run, if measured.
fn ours_median(rows: &[Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.kind == Kind::Ours)
        .and_then(|r| r.median_ns)
}

/// The fastest correct peer's median time and name (of the peers that
/// pass the conformance probes, where the bench runs them).
fn fastest_peer(rows: &[Row]) -> Option<(f64, &str)> {
    rows.iter()
        .filter(|r| r.kind == Kind::Peer)
        .filter_map(|r| r.median_ns.map(|t| (t, r.name.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// The line that compares `ours` with the fastest peer against `target`.
fn verdict(label: &str, ours: Option<f64>, best_peer: Option<(f64, &str)>, target: f64) -> String {
    match (ours, best_peer) {
        (Some(o), Some((p, name))) => {
            let ratio = p / o;
            let verdict = if ratio >= target { "MET" } else { "MISSED" };
            format!(
                "\n{label} / fastest peer ({name}): **{ratio:.2}x** (target {target}x: {verdict})\n"
            )
        }
        _ => format!("\n{label} / fastest peer: n/a\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, kind: Kind, median_ns: Option<f64>) -> Row {
        Row {
            name: name.into(),
            kind,
            median_ns,
            note: "n".into(),
        }
    }

    #[test]
    fn tables_have_one_cell_per_column() {
        let rows = [
            row("ours", Kind::Ours, Some(1e6)),
            row("peer", Kind::Peer, Some(2e6)),
            row("none", Kind::Peer, None),
        ];
        let text = table("t", 2_000_000, 1000, &rows, 2.0);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(
            lines,
            [
                "| contender | median time | GB/s | M events/s | speed vs sse-proto | note |",
                "|---|---:|---:|---:|---:|---|",
                "| ours | 1.000 ms | 2.000 | 1.00 | 1.00x | n |",
                "| peer | 2.000 ms | 1.000 | 0.50 | 0.50x | n |",
                "| none | - | - | - | - | n |",
            ]
        );
        assert!(text.contains("**2.00x** (target 2x: MET)"), "{text}");

        let text = client_table("t", 2_000_000, 1000, &rows, &[Some(1e5), Some(4e5)], 2.0);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(lines[1], "|---|---:|---:|---:|---:|---:|---:|---|");
        assert_eq!(
            &lines[2..],
            [
                "| ours | 1.000 ms | 1.00 | 2000 | 2.00x | 100.00 µs | 4.00x | n |",
                "| peer | 2.000 ms | 0.50 | 1000 | 1.00x | 400.00 µs | 1.00x | n |",
                "| none | - | - | - | - | - | - | n |",
            ]
        );
    }
}

//! The service crate's map, checked: every module belongs to an area, areas
//! only use the ones below them, and no two modules use each other, even
//! through a ring of others (docs/architecture.md, "The map").
//!
//! A module is an area's file or folder (`research::panel`). It uses another
//! when its source names it by path (`crate::infra::ledger::…`, `super::…`,
//! grouped `use crate::{…}` included) or calls a method that only the other
//! defines on `Services` — every area hangs its operations on that one
//! handle, so a plain `self.build_digest(…)` is a dependency too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. `domain` and `infra` are the shared base: either may use
/// the other's modules (never in a cycle); the areas above use both.
const LAYERS: &[&[&str]] = &[
    &["domain", "infra"],
    &["platform"],
    &["research"],
    &["commerce"],
    &["mail"],
    &["jobs", "report"],
];

/// Items of the crate root every module may name: the `Services` handle
/// (it holds connections and per-process caches, nothing else), the clock
/// and ids, and re-exports from `infra`.
const ROOT_ITEMS: &[&str] = &[
    "Services",
    "ServiceConfig",
    "now",
    "new_id",
    "Perm",
    "Principal",
    "RequestCtx",
    "Role",
    "Scope",
    "AppError",
    "AppResult",
    "FieldError",
    "has_id",
];

/// No file of the crate grows past this many lines.
const MAX_LINES: usize = 800;

fn layer_of(area: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&area))
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `research/panel/rows.rs` → `["research", "panel", "rows"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The code without comments and string literals (so that a doc comment
/// or a message naming a module is not a dependency).
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '{' would unbalance the groups below.
            out.push_str("' '");
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path that starts with `crate::` or `super::`, with grouped
/// imports expanded: `crate::{a::{b, c}, d}` → `a::b`, `a::c`, `d`.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
        let root = if rest.starts_with("crate::") {
            Some("crate")
        } else if rest.starts_with("super::") {
            Some("super")
        } else {
            None
        };
        match root {
            Some(r) if boundary => {
                let mut segs = Vec::new();
                let end = expand(&chars, i + r.len() + 2, &[], &mut segs);
                for s in segs {
                    found.push((r.to_owned(), s));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

/// Reads a path tail from `i` (after a `::`) into `out`; returns where it ended.
fn expand(chars: &[char], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut segs = prefix.to_vec();
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if chars.get(i) == Some(&'{') {
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return i + 1;
                }
                i = expand(chars, i, &segs, out);
                // `expand` stops at the `,` or `}` that ends the item.
                if chars.get(i) == Some(&'}') {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i > start {
            segs.push(chars[start..i].iter().collect());
        }
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
            continue;
        }
        // ` as name`, `*`, `!`, `(`, `;` … end the path.
        while i < chars.len() && !matches!(chars[i], ',' | '}' | ';' | '\n') {
            if chars[i] == '(' || chars[i] == '<' || chars[i] == ')' {
                break;
            }
            i += 1;
        }
        out.push(segs);
        return i;
    }
}

/// Module → the modules it uses, each with one line of evidence.
type Graph = BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>;

struct Crate {
    /// module path → its code (files of one module concatenated).
    code: BTreeMap<Vec<String>, String>,
    /// file → (module path, line count).
    files: Vec<(PathBuf, Vec<String>, usize)>,
}

fn load(src: &Path) -> Crate {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    files.sort();
    let mut code = BTreeMap::new();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let m = module_path(src, &f);
        out.push((f, m.clone(), text.lines().count()));
        code.insert(m, code_only(&text));
    }
    Crate { code, files: out }
}

/// The node a module belongs to: `[area, module]`, or `[area]` for an area's
/// own `mod.rs`, or `[]` for the crate root.
fn node(m: &[String]) -> Vec<String> {
    m.iter().take(2).cloned().collect()
}

/// Names of the methods each module defines on `Services`.
fn service_methods(c: &Crate) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut by_name: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, code) in &c.code {
        let mut rest = code.as_str();
        while let Some(at) = rest.find("impl Services {") {
            rest = &rest[at + "impl Services {".len()..];
            // The block ends at the brace that balances its opening one.
            let mut depth = 1usize;
            let mut end = rest.len();
            for (i, ch) in rest.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let block = &rest[..end];
            for (i, _) in block.match_indices("fn ") {
                if i > 0 && is_ident(block[..i].chars().last().unwrap()) {
                    continue;
                }
                let name: String = block[i + 3..]
                    .chars()
                    .take_while(|&c| is_ident(c))
                    .collect();
                if !name.is_empty() {
                    by_name.entry(name).or_default().insert(node(m));
                }
            }
            rest = &rest[end..];
        }
    }
    by_name
}

/// Module → the modules it uses, each with one line of evidence.
fn edges(c: &Crate) -> (Graph, Vec<String>) {
    let mut g: Graph = BTreeMap::new();
    let mut problems = Vec::new();
    let areas: BTreeSet<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    let methods = service_methods(c);
    for (m, code) in &c.code {
        let from = node(m);
        if from.is_empty() {
            continue; // the crate root: module list, re-exports, `Services`.
        }
        let entry = g.entry(from.clone()).or_default();
        for (root, segs) in paths(code) {
            let abs: Vec<String> = if root == "crate" {
                segs.clone()
            } else {
                // `super::` from a file of module `m` (a folder's `mod.rs` is
                // the module itself, so its `super` is one level up too).
                let mut base = m.clone();
                let mut segs = segs.as_slice();
                base.pop();
                while segs.first().is_some_and(|s| s == "super") {
                    base.pop();
                    segs = &segs[1..];
                }
                base.extend(segs.iter().cloned());
                base
            };
            let Some(first) = abs.first() else { continue };
            if ROOT_ITEMS.contains(&first.as_str()) {
                continue;
            }
            if !areas.contains(first.as_str()) {
                if root == "crate" {
                    problems.push(format!(
                        "{}: `crate::{}` is a re-export for transports; name the area (e.g. `crate::<area>::{}`)",
                        m.join("::"),
                        segs.join("::"),
                        first
                    ));
                }
                continue;
            }
            let to = node(&abs);
            if to != from && to.len() == 2 {
                entry
                    .entry(to)
                    .or_insert_with(|| format!("{root}::{}", segs.join("::")));
            }
        }
        for (name, owners) in &methods {
            if owners.len() != 1 || owners.contains(&from) {
                continue;
            }
            let needle = format!("self.{name}(");
            if code.contains(&needle) {
                let to = owners.iter().next().unwrap().clone();
                if to.len() == 2 {
                    entry.entry(to).or_insert_with(|| format!("self.{name}(…)"));
                }
            }
        }
    }
    (g, problems)
}

/// Cycles: strongly connected sets of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<Vec<String>>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(next) = t.g.get(v) {
            for w in next.keys() {
                let Some((w, _)) = t.g.get_key_value(w) else {
                    continue;
                };
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_belongs_to_an_area() {
    let c = load(&src_dir());
    let stray: Vec<String> = c
        .files
        .iter()
        .filter(|(_, m, _)| !m.is_empty() && layer_of(&m[0]).is_none())
        .map(|(f, _, _)| f.display().to_string())
        .collect();
    assert!(stray.is_empty(), "files outside every area: {stray:#?}");
}

#[test]
fn areas_use_only_the_areas_below_them_and_no_module_cycle() {
    let c = load(&src_dir());
    let (g, mut problems) = edges(&c);
    for (from, tos) in &g {
        for (to, why) in tos {
            let (lf, lt) = (layer_of(&from[0]), layer_of(&to[0]));
            if let (Some(lf), Some(lt)) = (lf, lt)
                && lt > lf
            {
                problems.push(format!(
                    "{} (layer {lf}) uses {} (layer {lt}, above it): {why}",
                    from.join("::"),
                    to.join("::")
                ));
            }
        }
    }
    for comp in cycles(&g) {
        let names: Vec<String> = comp.iter().map(|m| m.join("::")).collect();
        let mut why = Vec::new();
        for a in &comp {
            for b in &comp {
                if let Some(w) = g.get(a).and_then(|t| t.get(b)) {
                    why.push(format!("  {} → {}: {w}", a.join("::"), b.join("::")));
                }
            }
        }
        problems.push(format!(
            "import cycle between {}:\n{}",
            names.join(", "),
            why.join("\n")
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn no_file_is_a_god_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut long = Vec::new();
    for krate in [
        "service",
        "api",
        "analytics",
        "worker",
        "entity",
        "migration",
        "openapi",
    ] {
        let mut files = Vec::new();
        rs_files(&root.join(krate).join("src"), &mut files);
        for f in files {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_LINES {
                long.push(format!(
                    "{} ({n} lines)",
                    f.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:#?}");
}

/// The checker itself, on small made-up sources.
#[test]
fn paths_are_read_as_written() {
    let got = paths(&code_only(
        "use crate::{Services, research::{panel::X, ux}, infra::db};\n\
         let s = \"crate::mail::digest\"; // crate::jobs\n\
         super::super::cash::f(); crate::platform::clients::find(x);",
    ));
    let got: Vec<String> = got
        .into_iter()
        .map(|(r, s)| format!("{r}::{}", s.join("::")))
        .collect();
    assert_eq!(
        got,
        [
            "crate::Services",
            "crate::research::panel::X",
            "crate::research::ux",
            "crate::infra::db",
            "super::super::cash::f",
            "crate::platform::clients::find",
        ]
    );
}

#[test]
fn a_cycle_is_found() {
    let mut g: Graph = BTreeMap::new();
    let m = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    g.entry(m("research", "a"))
        .or_default()
        .insert(m("research", "b"), "x".into());
    g.entry(m("research", "b"))
        .or_default()
        .insert(m("research", "c"), "x".into());
    g.entry(m("research", "c"))
        .or_default()
        .insert(m("research", "a"), "x".into());
    g.entry(m("research", "d"))
        .or_default()
        .insert(m("research", "a"), "x".into());
    assert_eq!(
        cycles(&g),
        vec![vec![
            m("research", "a"),
            m("research", "b"),
            m("research", "c")
        ]]
    );
}

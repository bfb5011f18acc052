//! A mutation fuzzer for every parser that takes outside input: the
//! GraphQL endpoint's body and document, JSON bodies, segment filters,
//! JTBD label rules and the NDJSON and CSV importers (issue 16).
//!
//! Each target starts from its corpus (`tests/fuzz/corpus/<target>/`) and
//! runs mutants of it — byte flips, insertions, deletions, splices of two
//! seeds, repeated chunks and deep runs of brackets — on a thread with a
//! 2 MiB stack (what a thread gets without `RUST_MIN_STACK`), so a parse
//! that recursed without bound would overflow it. A panic is caught and its
//! input kept in `tests/fuzz/crashes/`; a stack overflow aborts the process,
//! and the input in flight is then in `tests/fuzz/crashes/<target>.in-flight`.
//! Exit status 1 when anything crashed.
//!
//! ```text
//! cargo run -p tests --bin fuzz -- [--seconds 60] [--seed 1] [--target graphql] [--dir tests/fuzz]
//! ```
//!
//! Why not cargo-fuzz: libFuzzer needs a nightly toolchain and its
//! sanitizers, which this offline stable build does not have. Coverage
//! guidance is what this gives up; the mutations are aimed instead at what
//! breaks parsers (nesting, truncation, odd bytes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use analytics::panel::{CompiledFilter, Condition, Dataset, Kind, PanelQuestion, Role};
use service::domain::answers::AnswerSchema;
use service::domain::import::{parse_csv, parse_ndjson};
use service::domain::questions::{Question, QuestionInput, parse_questions};
use service::domain::segment_filter::SegmentFilter;

const STACK: usize = 2 * 1024 * 1024;

type Target = fn(&Fixtures, &[u8]);

const TARGETS: [(&str, Target); 10] = [
    ("graphql", graphql),
    ("json_body", json_body),
    ("segment_filter", segment_filter),
    ("jtbd_rules", jtbd_rules),
    ("import_ndjson", import_ndjson),
    ("import_csv", import_csv),
    ("contacts_ndjson", contacts_ndjson),
    ("contacts_csv", contacts_csv),
    ("scoring_rules", scoring_rules),
    ("chain_template", chain_template),
];

/// What the targets parse against, built once per target thread.
struct Fixtures {
    questions: Vec<Question>,
    dataset: Dataset,
    graphql: Option<Graphql>,
}

/// The API's schema over a throw-away SQLite world.
struct Graphql {
    runtime: tokio::runtime::Runtime,
    services: service::Services,
    schema: api::graphql::GpSchema,
    _dir: tests::TempDir,
}

impl Graphql {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("gp-fuzz-{}", uuid::Uuid::new_v4().simple()));
        let settings = api::configuration::Settings {
            data_dir: dir.clone(),
            jwt_secret: Some(api::configuration::Secret::new(tests::JWT_SECRET)),
            ..Default::default()
        };
        let services = runtime
            .block_on(api::startup::connect(&settings))
            .expect("an embedded world for the GraphQL target");
        let schema = api::graphql::build_schema(services.clone());
        Self {
            runtime,
            services,
            schema,
            _dir: tests::TempDir(dir),
        }
    }
}

impl Fixtures {
    fn new(target: &str) -> Self {
        let qs: Vec<QuestionInput> = serde_json::from_value(serde_json::json!([
            {"key": "city", "type": "single_choice", "options": ["msk", "spb"], "required": true},
            {"key": "source", "type": "multi_choice", "options": ["social", "tv", "friends"]},
            {"key": "price", "type": "rating_1_5"},
            {"key": "nps", "type": "nps_0_10", "role": "nps"},
            {"key": "budget", "type": "number", "min": 0, "max": 1000000},
            {"key": "comment", "type": "text"},
            {"key": "mail", "type": "email"},
            {"key": "visit", "type": "date"}
        ]))
        .unwrap();
        let questions = parse_questions(qs).unwrap();
        let q = |key: &str, kind: Kind| PanelQuestion {
            key: key.into(),
            kind,
            role: Role::Other,
            factor: None,
        };
        let mut dataset = Dataset::new(vec![
            q(
                "city",
                Kind::Single {
                    options: vec!["msk".into(), "spb".into()],
                },
            ),
            q(
                "source",
                Kind::Multi {
                    options: vec!["social".into(), "tv".into(), "friends".into()],
                },
            ),
            q("nps", Kind::Nps),
            q("budget", Kind::Number),
        ]);
        for i in 0..64u16 {
            dataset.push(
                i64::from(i),
                vec![
                    analytics::panel::Cell::Choice(i % 2),
                    analytics::panel::Cell::Multi(u64::from(i % 8)),
                    analytics::panel::Cell::Num(f64::from(i % 11)),
                    analytics::panel::Cell::Num(f64::from(i) * 1000.0),
                ],
            );
        }
        let graphql = (target == "graphql").then(Graphql::new);
        Self {
            questions,
            dataset,
            graphql,
        }
    }
}

/// The whole unauthenticated `POST /graphql` path, as an attacker without
/// a token reaches it: body checks, then the real schema parses, validates
/// and executes the document (on an embedded SQLite database).
fn graphql(f: &Fixtures, input: &[u8]) {
    let Some(gql) = &f.graphql else {
        return;
    };
    let run = |body: &[u8]| {
        if let Ok(request) = api::graphql::parse_request(body) {
            // The grammar on its own first: it recurses once per level.
            let _ = async_graphql::parser::parse_query(&request.query);
            let data = api::graphql::request_data(
                request,
                &gql.services,
                Err(service::AppError::Unauthorized(
                    "missing bearer token".into(),
                )),
            );
            let _ = gql.runtime.block_on(gql.schema.execute(data));
        }
    };
    run(input);
    // The document alone, as GraphiQL or a client library sends it.
    if let Ok(text) = std::str::from_utf8(input) {
        run(serde_json::json!({ "query": text }).to_string().as_bytes());
    }
}

/// Any JSON body, into a loosely and a strictly typed target.
fn json_body(_: &Fixtures, input: &[u8]) {
    let _ = api::extract::parse_json::<serde_json::Value>(input);
    let _ = api::extract::parse_json::<service::domain::import::ResponseInput>(input);
}

/// `?filter=` → a validated filter → compiled and run on a dataset.
fn segment_filter(f: &Fixtures, input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(Some(filter)) = api::extract::filter_param(Some(text)) else {
        return;
    };
    let filter: SegmentFilter = filter;
    if filter.validate("filter").is_err() {
        return;
    }
    let conditions: Vec<Condition> = filter
        .conditions
        .into_iter()
        .map(|c| Condition {
            question: c.question,
            values: c.values,
            min: c.min,
            max: c.max,
        })
        .collect();
    if let Ok(compiled) = CompiledFilter::compile(&f.dataset, &conditions) {
        let _ = f.dataset.select(&compiled);
    }
}

/// A `PUT …/jtbd-rules` body (`{"rules": [...]}`) or a bare rule list.
fn jtbd_rules(_: &Fixtures, input: &[u8]) {
    use serde_json::Value;
    let rules = match api::extract::parse_json::<Value>(input) {
        Ok(Value::Array(rules)) => rules,
        Ok(Value::Object(mut body)) => match body.remove("rules") {
            Some(Value::Array(rules)) => rules,
            _ => return,
        },
        _ => return,
    };
    let _ = service::purchases::parse_rules(rules);
}

fn import_ndjson(f: &Fixtures, input: &[u8]) {
    let _ = parse_ndjson(&AnswerSchema::new(&f.questions), input);
}

fn import_csv(f: &Fixtures, input: &[u8]) {
    let _ = parse_csv(&AnswerSchema::new(&f.questions), input);
}

fn contacts_ndjson(_: &Fixtures, input: &[u8]) {
    let _ = service::contacts::parse_contacts_ndjson(input);
}

fn contacts_csv(_: &Fixtures, input: &[u8]) {
    let _ = service::contacts::parse_contacts_csv(input);
}

/// A `PUT /clients/{id}/scoring` body: parsed, then every rule checked.
fn scoring_rules(_: &Fixtures, input: &[u8]) {
    if let Ok(v) = api::extract::parse_json::<service::qualify::ScoringInput>(input) {
        let _ = service::qualify::check_scoring(&v);
    }
}

/// A chain step's or campaign's template source, as validation bounds
/// and compiles it.
fn chain_template(_: &Fixtures, input: &[u8]) {
    if let Ok(src) = std::str::from_utf8(input)
        && !service::domain::nesting::template_exceeds(src, service::domain::nesting::MAX_NESTING)
    {
        let _ = service::email::render::env().template_from_str(src);
    }
}

/// xorshift64*: reproducible from `--seed`, nothing to install.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: [&[u8]; 14] = [
    b"[", b"]", b"{", b"}", b"\"", b":", b",", b"null", b"\\u0000", b"\n", b";", b"(", b"$x",
    b"\xff",
];

/// A nesting depth, log-uniform from 1 to 131,072: parsers break at
/// different magnitudes (the GraphQL grammar overflowed a 2 MiB stack
/// between 500 and 900 levels and failed cleanly at 2,000).
fn depth(rng: &mut Rng) -> usize {
    let base = 1usize << rng.below(17);
    base + rng.below(base)
}

/// One mutant of a corpus entry (sometimes spliced with another).
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(9) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            4 => {
                // A deep run of one opener (and sometimes its closers):
                // what once overflowed a stack.
                let opens: [&[u8]; 4] = [b"[", b"{", b"(", b"{\"a\":"];
                let closes: [&[u8]; 4] = [b"]", b"}", b")", b"}"];
                let (open, close) = (opens[rng.below(4)], closes[rng.below(4)]);
                let depth = depth(rng);
                let mut run = open.repeat(depth);
                if rng.below(2) == 0 {
                    run.extend(close.repeat(depth));
                }
                v.splice(at..at, run);
            }
            5 if rng.below(2) == 0 => {
                // Deepen what is there: repeat an opener the input already
                // has, in place, where the grammar expects it.
                let openers: Vec<usize> = (0..v.len())
                    .filter(|&i| matches!(v[i], b'[' | b'{' | b'('))
                    .collect();
                if let Some(&i) = openers.get(rng.below(openers.len())) {
                    let run = vec![v[i]; depth(rng)];
                    v.splice(i..i, run);
                }
            }
            5 if !v.is_empty() => {
                // Repeat a chunk.
                let end = (at + 1 + rng.below(32)).min(v.len());
                let start = at.min(end);
                let chunk = v[start..end].to_vec();
                for _ in 0..1 + rng.below(8) {
                    v.splice(end..end, chunk.iter().copied());
                }
            }
            6 => {
                // Splice: the head of this seed, the tail of another.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            7 => v.truncate(at),
            _ => {
                let digits = ["-1", "1e309", "0", "99999999999999999999", "4.5", "NaN"];
                v.splice(at..at, digits[rng.below(digits.len())].bytes());
            }
        }
    }
    v
}

fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "{} holds no seeds", dir.display());
    seeds
}

struct Report {
    target: &'static str,
    runs: u64,
    crashes: Vec<PathBuf>,
}

fn run_target(name: &'static str, target: Target, root: &Path, seconds: u64, seed: u64) -> Report {
    let seeds = corpus(&root.join("corpus").join(name));
    let crash_dir = root.join("crashes");
    std::fs::create_dir_all(&crash_dir).unwrap();
    let in_flight = crash_dir.join(format!("{name}.in-flight"));
    let fixtures = Fixtures::new(name);
    let mut rng = Rng(seed ^ (name.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut report = Report {
        target: name,
        runs: 0,
        crashes: Vec::new(),
    };
    // The seeds themselves first, then mutants until the time is up.
    let mut pending: Vec<Vec<u8>> = seeds.clone();
    while Instant::now() < deadline || !pending.is_empty() {
        let input = pending.pop().unwrap_or_else(|| mutate(&mut rng, &seeds));
        std::fs::write(&in_flight, &input).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&fixtures, &input)));
        report.runs += 1;
        if outcome.is_err() {
            let path = crash_dir.join(format!("{name}-{:016x}", fnv(&input)));
            std::fs::write(&path, &input).unwrap();
            report.crashes.push(path);
        }
    }
    let _ = std::fs::remove_file(&in_flight);
    report
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let mut seconds = 10u64;
    let mut seed = 1u64;
    let mut only: Option<String> = None;
    let mut root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => seconds = value().parse().expect("--seconds N"),
            "--seed" => seed = value().parse().expect("--seed N"),
            "--target" => only = Some(value()),
            "--dir" => root = PathBuf::from(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    // Panics are expected findings here: keep their messages short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let chosen: Vec<_> = TARGETS
        .iter()
        .filter(|(n, _)| only.as_deref().is_none_or(|o| o == *n))
        .collect();
    assert!(!chosen.is_empty(), "no target named {only:?}");
    // All targets at once, each on its own small-stack thread.
    let handles: Vec<_> = chosen
        .iter()
        .map(|&&(name, target)| {
            let root = root.clone();
            std::thread::Builder::new()
                .name(format!("fuzz-{name}"))
                .stack_size(STACK)
                .spawn(move || run_target(name, target, &root, seconds, seed))
                .unwrap()
        })
        .collect();
    let mut failed = false;
    for h in handles {
        let r = h.join().expect("a fuzz thread");
        println!(
            "fuzz {:<15} {:>9} inputs, {} crashes",
            r.target,
            r.runs,
            r.crashes.len()
        );
        for c in &r.crashes {
            println!("  kept {}", c.display());
        }
        failed |= !r.crashes.is_empty();
    }
    if failed {
        std::process::exit(1);
    }
}

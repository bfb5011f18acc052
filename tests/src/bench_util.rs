//! Small helpers the benchmark binaries share: a seeded generator,
//! percentiles, peak memory and the `--rows N` argument.

/// A linear congruential generator: the same data on every run.
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Peak resident memory of this process (VmHWM), MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The `p` quantile (0..=1) of `v`, nearest rank.
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * p).round() as usize]
}

/// CPU time used so far, in clock ticks (1/100 s on Linux), by this
/// process and by every `postgres` process of the machine: where a write's
/// cost lands. Zeros where `/proc` cannot be read.
pub fn cpu_ticks() -> (u64, u64) {
    fn ticks(stat: &str) -> Option<(String, u64)> {
        // `pid (comm) state … utime stime …`: fields 14 and 15.
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_owned();
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some((
            comm,
            f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        ))
    }
    let read = |p: &std::path::Path| std::fs::read_to_string(p).ok().and_then(|s| ticks(&s));
    let own = read(std::path::Path::new("/proc/self/stat")).map_or(0, |(_, t)| t);
    let mut pg = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some((comm, t)) = read(&e.path().join("stat"))
            && comm == "postgres"
        {
            pg += t;
        }
    }
    (own, pg)
}

pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The volume benches' one argument, `--rows N` (default 1,000,000).
pub fn rows_arg(bench: &str) -> usize {
    let mut it = std::env::args().skip(1);
    let mut rows = 1_000_000;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => rows = it.next().and_then(|v| v.parse().ok()).expect("--rows N"),
            other => panic!("unknown argument {other}; usage: {bench} [--rows N]"),
        }
    }
    rows
}

/// Imports `rows` responses, each answers object from `answers`, through
/// the API as NDJSON, 100,000 rows a request; the seconds it took.
pub async fn import_responses(
    app: &crate::TestApp,
    token: &str,
    questionnaire: &str,
    rows: usize,
    mut answers: impl FnMut() -> serde_json::Value,
) -> f64 {
    let started = std::time::Instant::now();
    let mut left = rows;
    while left > 0 {
        let n = left.min(100_000);
        let mut body = String::with_capacity(n * 330);
        for _ in 0..n {
            body.push_str(&serde_json::json!({"answers": answers()}).to_string());
            body.push('\n');
        }
        let r = app
            .raw(
                reqwest::Method::POST,
                &format!("/api/v1/questionnaires/{questionnaire}/responses/import"),
                Some(token),
                "application/x-ndjson",
                body,
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.text);
        left -= n;
    }
    started.elapsed().as_secs_f64()
}

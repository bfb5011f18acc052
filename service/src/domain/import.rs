//! Parsing responses from one JSON document, NDJSON lines or CSV rows.
//! Every row is validated; the caller stores nothing unless all rows pass.
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::answers::{AnswerSchema, canonical_cell};
use super::questions::RESERVED_KEYS;
use crate::infra::error::FieldError;

pub const MAX_IMPORT_ROWS: usize = 100_000;
pub const MAX_REPORTED_ERRORS: usize = 100;
pub const MAX_EXTERNAL_ID: usize = 200;

/// One response as an integration sends it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub respondent_ref: Option<String>,
    pub answers: Map<String, Value>,
}

/// A validated response ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResponse {
    pub external_id: Option<String>,
    pub respondent_ref: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub answers: Value,
}

/// Collects at most [`MAX_REPORTED_ERRORS`] errors while counting all.
#[derive(Debug, Default)]
pub struct ErrorSink {
    pub errors: Vec<FieldError>,
    pub total: usize,
}

impl ErrorSink {
    pub fn push(&mut self, e: FieldError) {
        self.total += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(e);
        }
    }

    pub fn extend(&mut self, row: usize, errs: Vec<FieldError>) {
        for e in errs {
            self.push(e.at_row(row));
        }
    }

    /// Takes in the errors of a later part of the same body.
    pub fn merge(&mut self, part: ErrorSink) {
        // The part kept its own first errors, so the first overall are among them.
        let kept = part.errors.len();
        for e in part.errors {
            self.push(e);
        }
        self.total += part.total - kept;
    }
}

fn check_ids(
    external_id: &Option<String>,
    respondent_ref: &Option<String>,
) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    for (name, v) in [
        ("external_id", external_id),
        ("respondent_ref", respondent_ref),
    ] {
        if let Some(v) = v
            && (v.is_empty() || super::text::longer_than(v, MAX_EXTERNAL_ID))
        {
            errs.push(FieldError::new(
                name,
                format!("must be 1 to {MAX_EXTERNAL_ID} characters"),
            ));
        }
        if let Some(v) = v
            && super::nul::has_nul(v)
        {
            errs.push(FieldError::new(name, super::nul::MESSAGE));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

pub fn parse_one(
    schema: &AnswerSchema,
    input: ResponseInput,
) -> Result<ParsedResponse, Vec<FieldError>> {
    let mut errs = check_ids(&input.external_id, &input.respondent_ref)
        .err()
        .unwrap_or_default();
    match schema.validate_json(input.answers) {
        Ok(answers) if errs.is_empty() => Ok(ParsedResponse {
            external_id: input.external_id,
            respondent_ref: input.respondent_ref,
            submitted_at: input.submitted_at,
            answers,
        }),
        Ok(_) => Err(errs),
        Err(e) => {
            errs.extend(e);
            Err(errs)
        }
    }
}

/// The field a serde_path_to_error path names: malformed JSON is the whole
/// document's fault; unknown segments (`?`) are dropped.
pub fn json_error_field(path: &str, malformed: bool, whole: &str) -> String {
    if malformed {
        return whole.to_owned();
    }
    let kept: Vec<&str> = path
        .split('.')
        .filter(|seg| !seg.is_empty() && *seg != "?")
        .collect();
    if kept.is_empty() {
        whole.to_owned()
    } else {
        kept.join(".")
    }
}

fn too_many_rows() -> FieldError {
    FieldError::new("body", format!("at most {MAX_IMPORT_ROWS} rows per import"))
}

/// NDJSON: one response object per line; blank lines are skipped. Large
/// bodies are parsed on several threads, each taking a contiguous run of
/// lines; rows and errors come out in line order as from one pass.
pub fn parse_ndjson(schema: &AnswerSchema, body: &[u8]) -> Result<Vec<ParsedResponse>, ErrorSink> {
    let (lines, too_many) = ndjson_lines(body);
    let threads = if lines.len() < PARALLEL_FROM_ROWS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    let per = lines.len().div_ceil(threads).max(1);
    let parts: Vec<(Vec<ParsedResponse>, ErrorSink)> = if threads == 1 {
        vec![parse_lines(schema, &lines, 0)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = lines
                .chunks(per)
                .enumerate()
                .map(|(i, chunk)| s.spawn(move || parse_lines(schema, chunk, i * per)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut sink = ErrorSink::default();
    let mut out = Vec::with_capacity(lines.len());
    for (rows, part) in parts {
        out.extend(rows);
        sink.merge(part);
    }
    if too_many {
        sink.push(too_many_rows().at_row(MAX_IMPORT_ROWS + 1));
    }
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

/// The non-blank lines of an NDJSON body, at most [`MAX_IMPORT_ROWS`], and
/// whether there were more.
fn ndjson_lines(body: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    let too_many = lines.len() > MAX_IMPORT_ROWS;
    lines.truncate(MAX_IMPORT_ROWS);
    (lines, too_many)
}

/// NDJSON parsed on the calling thread, handing each valid row to `each`
/// in line order as soon as its run of lines is parsed: for a caller that
/// stores rows while the rest are parsed. The errors equal
/// [`parse_ndjson`]'s.
pub fn each_ndjson(
    schema: &AnswerSchema,
    body: &[u8],
    mut each: impl FnMut(ParsedResponse),
) -> ErrorSink {
    const RUN: usize = 1_024;
    let (lines, too_many) = ndjson_lines(body);
    let mut sink = ErrorSink::default();
    for (i, run) in lines.chunks(RUN).enumerate() {
        let (rows, part) = parse_lines(schema, run, i * RUN);
        rows.into_iter().for_each(&mut each);
        sink.merge(part);
    }
    if too_many {
        sink.push(too_many_rows().at_row(MAX_IMPORT_ROWS + 1));
    }
    sink
}

/// Bodies with fewer lines are parsed on the calling thread.
const PARALLEL_FROM_ROWS: usize = 4_096;

/// Parses `lines`, the first of which is row `before + 1`.
fn parse_lines(
    schema: &AnswerSchema,
    lines: &[&[u8]],
    before: usize,
) -> (Vec<ParsedResponse>, ErrorSink) {
    let mut sink = ErrorSink::default();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let row = before + i + 1;
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed: Result<ResponseInput, _> = crate::domain::strict::deserialize(&mut de);
        match parsed {
            Ok(input) => match parse_one(schema, input) {
                Ok(r) => out.push(r),
                Err(errs) => sink.extend(row, errs),
            },
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let field = json_error_field(&path, inner.is_syntax() || inner.is_eof(), "line");
                sink.push(FieldError::new(field, inner.to_string()).at_row(row));
            }
        }
    }
    (out, sink)
}

/// CSV with a header of question keys (plus `external_id`, `submitted_at`,
/// `respondent_ref`); multi-choice cells are `a;b`.
pub fn parse_csv(schema: &AnswerSchema, body: &[u8]) -> Result<Vec<ParsedResponse>, ErrorSink> {
    let mut out = Vec::new();
    let sink = each_csv(schema, body, |r| out.push(r));
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

/// CSV rows handed to `each` as they are parsed, in body order (see
/// [`each_ndjson`]); no row is handed over once the header is refused.
pub fn each_csv(
    schema: &AnswerSchema,
    body: &[u8],
    mut each: impl FnMut(ParsedResponse),
) -> ErrorSink {
    let mut sink = ErrorSink::default();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            sink.push(FieldError::new("header", csv_message(&e)).at_row(0));
            return sink;
        }
    };
    let mut columns = Vec::with_capacity(headers.len());
    let mut seen = std::collections::HashSet::new();
    for name in headers.iter() {
        let name = name.trim();
        if !seen.insert(name.to_owned()) {
            sink.push(FieldError::new(name, "column appears twice in the header").at_row(0));
        }
        if RESERVED_KEYS.contains(&name) {
            columns.push(Column::Reserved(name.to_owned()));
        } else if let Some(q) = schema.get(name) {
            columns.push(Column::Question(q));
        } else {
            sink.push(FieldError::new(name, "no question has this key").at_row(0));
            columns.push(Column::Unknown);
        }
    }
    if sink.total > 0 {
        return sink;
    }
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                sink.push(FieldError::new("row", csv_message(&e)).at_row(row + 1));
                break;
            }
        }
        row += 1;
        if row > MAX_IMPORT_ROWS {
            sink.push(too_many_rows().at_row(row));
            break;
        }
        let mut answers = Map::new();
        let mut errs = Vec::new();
        let mut external_id = None;
        let mut respondent_ref = None;
        let mut submitted_at = None;
        for (col, cell) in columns.iter().zip(record.iter()) {
            match col {
                Column::Question(q) => match canonical_cell(q, cell) {
                    Ok(Some(v)) => {
                        answers.insert(q.key.clone(), v);
                    }
                    Ok(None) => {}
                    Err(msg) => errs.push(FieldError::new(format!("answers.{}", q.key), msg)),
                },
                Column::Reserved(name) => {
                    let cell = cell.trim();
                    if cell.is_empty() {
                        continue;
                    }
                    match name.as_str() {
                        "external_id" => external_id = Some(cell.to_owned()),
                        "respondent_ref" => respondent_ref = Some(cell.to_owned()),
                        _ => match DateTime::parse_from_rfc3339(cell) {
                            Ok(t) => submitted_at = Some(t.with_timezone(&Utc)),
                            Err(_) => errs.push(FieldError::new(
                                "submitted_at",
                                "expected an RFC 3339 time, e.g. 2026-11-02T10:00:00Z",
                            )),
                        },
                    }
                }
                Column::Unknown => {}
            }
        }
        if let Err(e) = check_ids(&external_id, &respondent_ref) {
            errs.extend(e);
        }
        schema.check_required(&answers, &mut errs);
        if errs.is_empty() {
            each(ParsedResponse {
                external_id,
                respondent_ref,
                submitted_at,
                answers: Value::Object(answers),
            });
        } else {
            sink.extend(row, errs);
        }
    }
    sink
}

enum Column<'a> {
    Question(&'a super::questions::Question),
    Reserved(String),
    Unknown,
}

pub(crate) fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        _ => format!("is not valid CSV: {e}"),
    }
}

/// Positions of a fixed set of CSV columns in a header (any order); a
/// repeated, unknown (`what` says what it is not) or missing required
/// column goes to `sink` at row 0.
fn fixed_csv_columns<const N: usize>(
    headers: &csv::StringRecord,
    columns: &[&str; N],
    required: &[&str],
    what: &str,
    sink: &mut ErrorSink,
) -> [Option<usize>; N] {
    let mut at: [Option<usize>; N] = [None; N];
    for (i, name) in headers.iter().enumerate() {
        let name = name.trim();
        match columns.iter().position(|c| *c == name) {
            Some(k) if at[k].is_some() => {
                sink.push(FieldError::new(name, "column appears twice in the header").at_row(0));
            }
            Some(k) => at[k] = Some(i),
            None => sink.push(FieldError::new(name, format!("is not {what} column")).at_row(0)),
        }
    }
    for name in required {
        if columns
            .iter()
            .position(|c| c == name)
            .is_none_or(|k| at[k].is_none())
        {
            sink.push(FieldError::new(*name, "the header lacks this column").at_row(0));
        }
    }
    at
}

/// CSV with a header naming fixed `columns` in any order: each record's
/// trimmed cells (by column; `None` when absent or empty) go to `row`, at
/// most `max_rows`; every error named by row and field.
pub(crate) fn fixed_csv_rows<const N: usize, P>(
    body: &[u8],
    columns: &[&str; N],
    required: &[&str],
    what: &str,
    max_rows: usize,
    mut row_fn: impl FnMut(&[Option<&str>; N]) -> Result<P, Vec<FieldError>>,
) -> Result<Vec<P>, ErrorSink> {
    let mut sink = ErrorSink::default();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            sink.push(FieldError::new("header", csv_message(&e)).at_row(0));
            return Err(sink);
        }
    };
    let at = fixed_csv_columns(&headers, columns, required, what, &mut sink);
    if sink.total > 0 {
        return Err(sink);
    }
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                sink.push(FieldError::new("row", csv_message(&e)).at_row(row + 1));
                break;
            }
        }
        row += 1;
        if row > max_rows {
            sink.push(
                FieldError::new("body", format!("at most {max_rows} rows per import")).at_row(row),
            );
            break;
        }
        let cells: [Option<&str>; N] = std::array::from_fn(|k| {
            at[k]
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|c| !c.is_empty())
        });
        match row_fn(&cells) {
            Ok(p) => out.push(p),
            Err(errs) => sink.extend(row, errs),
        }
    }
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

/// A row's cell errors joined with its check's: `checked` unless a cell
/// failed, the check's errors for fields not already named.
pub(crate) fn with_cell_errors<P>(
    mut errs: Vec<FieldError>,
    checked: Result<P, Vec<FieldError>>,
) -> Result<P, Vec<FieldError>> {
    match checked {
        Ok(p) if errs.is_empty() => Ok(p),
        Ok(_) => Err(errs),
        Err(e) => {
            for f in e {
                if !errs.iter().any(|x| x.field == f.field) {
                    errs.push(f);
                }
            }
            Err(errs)
        }
    }
}

/// NDJSON: one `T` per line (blank lines skipped), each checked by
/// `check`; at most `max_rows`; every error named by row and field.
pub(crate) fn ndjson_rows<T: serde::de::DeserializeOwned, P>(
    body: &[u8],
    max_rows: usize,
    mut check: impl FnMut(T) -> Result<P, Vec<FieldError>>,
) -> Result<Vec<P>, ErrorSink> {
    let mut sink = ErrorSink::default();
    let mut out = Vec::new();
    let mut row = 0usize;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        row += 1;
        if row > max_rows {
            sink.push(
                FieldError::new("body", format!("at most {max_rows} rows per import")).at_row(row),
            );
            break;
        }
        let mut de = serde_json::Deserializer::from_slice(line);
        match crate::domain::strict::deserialize::<_, T>(&mut de) {
            Ok(input) => match check(input) {
                Ok(p) => out.push(p),
                Err(errs) => sink.extend(row, errs),
            },
            Err(e) => sink.push(serde_error(e, "line").at_row(row)),
        }
    }
    if sink.total == 0 { Ok(out) } else { Err(sink) }
}

/// A serde error naming the field; a missing field is named itself, not
/// its parent.
pub(crate) fn serde_error(
    e: serde_path_to_error::Error<serde_json::Error>,
    whole: &str,
) -> FieldError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let malformed = inner.is_syntax() || inner.is_eof();
    let msg = inner.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if !malformed
        && let Some(name) = msg
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
    {
        let parent = json_error_field(&path, false, "");
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return FieldError::new(field, "is required");
    }
    FieldError::new(json_error_field(&path, malformed, whole), msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::questions::{QuestionInput, parse_questions};
    use serde_json::json;

    fn qs() -> Vec<super::super::questions::Question> {
        let qs: Vec<QuestionInput> = serde_json::from_value(json!([
            {"key": "city", "type": "single_choice", "options": ["msk", "spb"]},
            {"key": "src", "type": "multi_choice", "options": ["social", "tv"]},
            {"key": "nps", "type": "nps_0_10", "role": "nps"}
        ]))
        .unwrap();
        parse_questions(qs).unwrap()
    }

    #[test]
    fn csv_rows_become_canonical_responses() {
        let q = qs();
        let s = AnswerSchema::new(&q);
        let body = b"external_id,city,src,nps\ne1,msk,social;tv,9\ne2,spb,,\n";
        let rows = parse_csv(&s, body).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].answers,
            json!({"city": "msk", "src": ["social", "tv"], "nps": 9})
        );
        assert_eq!(rows[1].answers, json!({"city": "spb"}));
        assert_eq!(rows[1].external_id.as_deref(), Some("e2"));
    }

    #[test]
    fn malformed_csv_names_the_row() {
        let q = qs();
        let s = AnswerSchema::new(&q);
        let err = parse_csv(&s, b"city,nps\nmsk,9\nspb\n").unwrap_err();
        assert_eq!(err.errors[0].row, Some(2));
        let err = parse_csv(&s, b"city,ghost\nmsk,1\n").unwrap_err();
        assert_eq!(err.errors[0].field, "ghost");
        let err = parse_csv(&s, b"city,nps\nmsk,12\n").unwrap_err();
        assert_eq!(
            (err.errors[0].field.as_str(), err.errors[0].row),
            ("answers.nps", Some(1))
        );
    }

    #[test]
    fn ndjson_reports_bad_lines() {
        let q = qs();
        let s = AnswerSchema::new(&q);
        let body = b"{\"answers\":{\"city\":\"msk\"}}\n\n{\"answers\":{\"city\":\"x\"}}\n{not json\n{\"answers\":{},\"extra\":1}\n";
        let err = parse_ndjson(&s, body).unwrap_err();
        let got: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.row, e.field.clone()))
            .collect();
        assert_eq!(got[0], (Some(2), "answers.city".into()));
        assert_eq!(got[1].0, Some(3));
        assert_eq!(got[2].0, Some(4));
        assert_eq!(err.total, 3);
    }

    #[test]
    fn ndjson_parsed_in_parallel_equals_one_pass() {
        let q = qs();
        let s = AnswerSchema::new(&q);
        let mut body = String::new();
        for i in 0..20_000 {
            match i % 97 {
                5 => body.push_str("{\"answers\":{\"city\":\"kzn\"}}\n"),
                6 => body.push_str("\n  \r\n"),
                7 => body.push_str("{oops\n"),
                _ => body.push_str(&format!(
                    "{{\"external_id\":\"e{i}\",\"answers\":{{\"city\":\"msk\",\"nps\":{}}}}}\r\n",
                    i % 11
                )),
            }
        }
        let lines: Vec<&[u8]> = body
            .as_bytes()
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        let (_, one_pass) = parse_lines(&s, &lines, 0);
        let parallel = parse_ndjson(&s, body.as_bytes()).unwrap_err();
        assert_eq!(parallel.total, one_pass.total);
        assert_eq!(parallel.errors, one_pass.errors);
        assert_eq!(parallel.errors.len(), MAX_REPORTED_ERRORS);

        let good: String = body
            .lines()
            .filter(|l| !l.contains("kzn") && !l.contains("oops"))
            .map(|l| format!("{l}\n"))
            .collect();
        let rows = parse_ndjson(&s, good.as_bytes()).unwrap();
        let lines: Vec<&[u8]> = good
            .as_bytes()
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        assert_eq!(rows, parse_lines(&s, &lines, 0).0);
        assert_eq!(rows[0].external_id.as_deref(), Some("e0"));

        // Row by row, as a streaming import takes them: the same rows and errors.
        let mut streamed = Vec::new();
        let sink = each_ndjson(&s, body.as_bytes(), |r| streamed.push(r));
        assert_eq!((sink.total, sink.errors), (one_pass.total, one_pass.errors));
        let mut streamed = Vec::new();
        assert_eq!(
            each_ndjson(&s, good.as_bytes(), |r| streamed.push(r)).total,
            0
        );
        assert_eq!(streamed, rows);
    }

    #[test]
    fn ndjson_over_the_row_limit_names_the_first_row_too_many() {
        let q = qs();
        let s = AnswerSchema::new(&q);
        let body = "{\"answers\":{\"city\":\"msk\"}}\n".repeat(MAX_IMPORT_ROWS + 5);
        let err = parse_ndjson(&s, body.as_bytes()).unwrap_err();
        assert_eq!(err.total, 1);
        assert_eq!(err.errors[0].row, Some(MAX_IMPORT_ROWS + 1));
    }
}

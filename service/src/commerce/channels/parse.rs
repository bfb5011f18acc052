//! Channel figures as integrations send them: a JSON list, NDJSON or CSV,
//! every row validated before any is stored, errors naming row and field.
use super::*;
use crate::domain::import::{ErrorSink, fixed_csv_rows, ndjson_rows, with_cell_errors};
use crate::infra::error::FieldError;

pub(crate) fn check_day(input: ChannelDayInput) -> Result<ParsedDay, Vec<FieldError>> {
    let mut errs = Vec::new();
    if crate::domain::nul::has_nul(&input.channel) {
        errs.push(FieldError::new("channel", crate::domain::nul::MESSAGE));
    } else if !crate::domain::text::fits(&input.channel, MAX_CHANNEL) {
        errs.push(FieldError::new(
            "channel",
            format!("must be 1 to {MAX_CHANNEL} characters"),
        ));
    }
    if !(first_day()..=last_day()).contains(&input.day) {
        errs.push(FieldError::new(
            "day",
            format!("must be from {} to {}", first_day(), last_day()),
        ));
    }
    if !(input.spend.is_finite() && (0.0..=MAX_MONEY).contains(&input.spend)) {
        errs.push(FieldError::new(
            "spend",
            format!("must be from 0 to {MAX_MONEY}"),
        ));
    }
    let counts = [
        ("impressions", input.impressions),
        ("clicks", input.clicks),
        ("contacts", input.contacts),
        ("leads", input.leads),
        ("mentions", input.mentions),
        ("brand_searches", input.brand_searches),
    ];
    for (name, v) in counts {
        if !(0..=MAX_COUNT).contains(&v) {
            errs.push(FieldError::new(
                name,
                format!("must be an integer from 0 to {MAX_COUNT}"),
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ParsedDay {
        day: input.day,
        channel: input.channel.trim().to_owned(),
        funnel: input.funnel,
        spend: input.spend + 0.0,
        counts: counts.map(|(_, v)| v),
    })
}

/// NDJSON: one row object per line; blank lines are skipped.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<ParsedDay>, ErrorSink> {
    ndjson_rows(body, MAX_IMPORT_ROWS, check_day)
}

/// The columns of [`ChannelDayInput`]; the first four are required.
pub const CSV_COLUMNS: [&str; 10] = [
    "day",
    "channel",
    "funnel",
    "spend",
    "impressions",
    "clicks",
    "contacts",
    "leads",
    "mentions",
    "brand_searches",
];

/// CSV with a header naming the columns in any order; an empty count cell
/// is 0.
pub fn parse_csv(body: &[u8]) -> Result<Vec<ParsedDay>, ErrorSink> {
    let required = &CSV_COLUMNS[..4];
    fixed_csv_rows(
        body,
        &CSV_COLUMNS,
        required,
        "a channel figure",
        MAX_IMPORT_ROWS,
        |cells| {
            let cell = |k: usize| cells[k].unwrap_or("");
            let mut errs = Vec::new();
            let day = NaiveDate::parse_from_str(cell(0), "%Y-%m-%d")
                .map_err(|_| errs.push(FieldError::new("day", "expected YYYY-MM-DD")))
                .ok();
            let funnel = FunnelType::parse(cell(2))
                .ok_or_else(|| {
                    errs.push(FieldError::new(
                        "funnel",
                        "must be reach, warming or reverse",
                    ))
                })
                .ok();
            let spend = cell(3)
                .parse::<f64>()
                .map_err(|_| errs.push(FieldError::new("spend", "is not a number")))
                .ok();
            let mut counts = [0i64; 6];
            for (j, c) in counts.iter_mut().enumerate() {
                if let Some(text) = cells[4 + j] {
                    match text.parse::<i64>() {
                        Ok(v) => *c = v,
                        Err(_) => {
                            errs.push(FieldError::new(CSV_COLUMNS[4 + j], "is not an integer"))
                        }
                    }
                }
            }
            // Cells that did not parse are already reported; stand-ins let the
            // range checks of the others run too.
            let [
                impressions,
                clicks,
                contacts,
                leads,
                mentions,
                brand_searches,
            ] = counts;
            let input = ChannelDayInput {
                day: day.unwrap_or_else(first_day),
                channel: cell(1).to_owned(),
                funnel: funnel.unwrap_or(FunnelType::Reach),
                spend: spend.unwrap_or(0.0),
                impressions,
                clicks,
                contacts,
                leads,
                mentions,
                brand_searches,
            };
            with_cell_errors(errs, check_day(input))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_parse_and_bad_cells_are_named() {
        let ok =
            b"day,channel,funnel,spend,impressions,clicks\n2026-03-02,rtb,reach,100.5,50000,\n";
        let rows = parse_csv(ok).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].counts, [50_000, 0, 0, 0, 0, 0]);
        let bad = b"day,channel,funnel,spend,leads\n2026-13-02,rtb,cold,-1,x\n";
        let sink = parse_csv(bad).unwrap_err();
        let fields: Vec<&str> = sink.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["day", "funnel", "leads", "spend"],
            "parse errors, then range errors"
        );
        let header = parse_csv(b"day,channel,spend,cost\n").unwrap_err();
        let fields: Vec<&str> = header.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["cost", "funnel"]);
    }

    #[test]
    fn ndjson_rows_refuse_unknown_fields_and_out_of_range() {
        let body = b"{\"day\":\"2026-03-02\",\"channel\":\"rtb\",\"funnel\":\"reach\",\"spend\":1,\"cpm\":3}\n{\"day\":\"2026-03-02\",\"channel\":\"rtb\",\"funnel\":\"reach\",\"spend\":1,\"clicks\":-4}\n";
        let sink = parse_ndjson(body).unwrap_err();
        assert_eq!(sink.total, 2);
        assert_eq!(sink.errors[1].field, "clicks");
    }
}

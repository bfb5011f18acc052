//! Purchases as integrations send them: one JSON document, NDJSON or CSV,
//! every row validated before any is stored, errors naming row and field.

use chrono::{DateTime, Utc};

use super::*;
pub(crate) use crate::domain::import::serde_error;
use crate::domain::import::{
    ErrorSink, MAX_EXTERNAL_ID, fixed_csv_rows, ndjson_rows, with_cell_errors,
};
use crate::infra::error::{AppError, AppResult, FieldError};

pub(crate) fn check_purchase(input: PurchaseInput) -> Result<ParsedPurchase, Vec<FieldError>> {
    let mut errs = Vec::new();
    let text = crate::domain::text::fits;
    for (name, v) in [
        ("external_id", input.external_id.as_deref()),
        ("customer_ref", Some(input.customer_ref.as_str())),
        ("channel", input.channel.as_deref()),
    ] {
        if v.is_some_and(crate::domain::nul::has_nul) {
            errs.push(FieldError::new(name, crate::domain::nul::MESSAGE));
        }
    }
    if let Some(e) = &input.external_id
        && !text(e, MAX_EXTERNAL_ID)
    {
        errs.push(FieldError::new(
            "external_id",
            format!("must be 1 to {MAX_EXTERNAL_ID} characters"),
        ));
    }
    if !text(&input.customer_ref, MAX_EXTERNAL_ID) {
        errs.push(FieldError::new(
            "customer_ref",
            format!("must be 1 to {MAX_EXTERNAL_ID} characters"),
        ));
    }
    if !(input.amount.is_finite() && (0.0..=MAX_AMOUNT).contains(&input.amount)) {
        errs.push(FieldError::new(
            "amount",
            format!("must be from 0 to {MAX_AMOUNT}"),
        ));
    }
    if !(0..=MAX_ITEMS).contains(&input.items) {
        errs.push(FieldError::new(
            "items",
            format!("must be an integer from 0 to {MAX_ITEMS}"),
        ));
    }
    if !(1..=MAX_PARTY_SIZE).contains(&input.party_size) {
        errs.push(FieldError::new(
            "party_size",
            format!("must be an integer from 1 to {MAX_PARTY_SIZE}"),
        ));
    }
    if let Some(c) = &input.channel
        && !text(c, MAX_CHANNEL)
    {
        errs.push(FieldError::new(
            "channel",
            format!("must be 1 to {MAX_CHANNEL} characters"),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ParsedPurchase {
        external_id: input.external_id,
        customer_ref: input.customer_ref,
        purchased_at: input.purchased_at,
        amount: input.amount + 0.0,
        // in range, checked above
        items: input.items as i32,
        party_size: input.party_size as i32,
        channel: input.channel,
    })
}

/// NDJSON: one purchase object per line; blank lines are skipped.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<ParsedPurchase>, ErrorSink> {
    ndjson_rows(body, MAX_IMPORT_ROWS, check_purchase)
}

/// One purchase from a JSON document (the single-purchase endpoint).
pub fn purchase_from_json(v: serde_json::Value) -> AppResult<PurchaseInput> {
    crate::domain::strict::deserialize(v)
        .map_err(|e| AppError::Validation(vec![serde_error(e, "body")]))
}

const CSV_COLUMNS: [&str; 7] = [
    "external_id",
    "customer_ref",
    "purchased_at",
    "amount",
    "items",
    "party_size",
    "channel",
];

const CSV_REQUIRED: [&str; 5] = [
    "customer_ref",
    "purchased_at",
    "amount",
    "items",
    "party_size",
];

/// CSV with a header naming the columns of [`PurchaseInput`] in any order
/// (`external_id` and `channel` optional); an empty optional cell is absent.
pub fn parse_csv(body: &[u8]) -> Result<Vec<ParsedPurchase>, ErrorSink> {
    fixed_csv_rows(
        body,
        &CSV_COLUMNS,
        &CSV_REQUIRED,
        "a purchase",
        MAX_IMPORT_ROWS,
        |cells| {
            let cell = |k: usize| cells[k];
            let mut errs = Vec::new();
            let required = |k: usize, errs: &mut Vec<FieldError>| {
                let c = cell(k);
                if c.is_none() {
                    errs.push(FieldError::new(CSV_COLUMNS[k], "is required"));
                }
                c
            };
            let customer_ref = required(1, &mut errs).unwrap_or_default().to_owned();
            let purchased_at = required(2, &mut errs).and_then(|c| {
                DateTime::parse_from_rfc3339(c)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        errs.push(FieldError::new(
                            "purchased_at",
                            "expected an RFC 3339 time, e.g. 2026-11-02T10:00:00Z",
                        ))
                    })
                    .ok()
            });
            let amount = required(3, &mut errs).and_then(|c| {
                c.parse::<f64>()
                    .map_err(|_| errs.push(FieldError::new("amount", "is not a number")))
                    .ok()
            });
            let mut int = |k: usize| {
                required(k, &mut errs).and_then(|c| {
                    c.parse::<i64>()
                        .map_err(|_| {
                            errs.push(FieldError::new(CSV_COLUMNS[k], "is not an integer"))
                        })
                        .ok()
                })
            };
            let items = int(4);
            let party_size = int(5);
            let (Some(purchased_at), Some(amount), Some(items), Some(party_size)) =
                (purchased_at, amount, items, party_size)
            else {
                return Err(errs);
            };
            let input = PurchaseInput {
                external_id: cell(0).map(str::to_owned),
                customer_ref,
                purchased_at,
                amount,
                items,
                party_size,
                channel: cell(6).map(str::to_owned),
            };
            // a blank required cell is already reported as such
            with_cell_errors(errs, check_purchase(input))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_purchases() {
        let body = b"customer_ref,purchased_at,amount,items,party_size,channel,external_id\n\
                     c1,2026-01-05T09:30:00Z,20.5,2,1,hall,e1\n\
                     c2,2026-01-05T10:00:00+03:00,0,0,3,,\n";
        let rows = parse_csv(body).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].external_id.as_deref(), Some("e1"));
        assert_eq!(rows[0].channel.as_deref(), Some("hall"));
        assert_eq!(rows[1].channel, None);
        assert_eq!(
            rows[1].purchased_at.to_rfc3339(),
            "2026-01-05T07:00:00+00:00"
        );
    }

    #[test]
    fn malformed_csv_names_the_row_and_field() {
        let err = parse_csv(b"customer_ref,purchased_at,amount,items\nc,x,1,1\n").unwrap_err();
        assert_eq!(err.errors[0].field, "party_size");
        let err = parse_csv(
            b"customer_ref,purchased_at,amount,items,party_size\nc,2026-01-01T00:00:00Z,1,1,1\nc,1\n",
        )
        .unwrap_err();
        assert_eq!(
            (err.errors[0].field.as_str(), err.errors[0].row),
            ("row", Some(2))
        );
        let err = parse_csv(
            b"customer_ref,purchased_at,amount,items,party_size\nc,2026-01-01T00:00:00Z,-1,1,0\nc,2026-01-01T00:00:00Z,1,1.5,1\n",
        )
        .unwrap_err();
        let fields: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (Some(1), "amount"),
                (Some(1), "party_size"),
                (Some(2), "items")
            ]
        );
    }
}

//! Stored answers → dataset rows, fast enough for a full recompute at a
//! million responses.
//!
//! [`RowDecoder`] turns one stored answers document (JSON text) straight
//! into the cells of a row, without building a `serde_json::Value`: keys are
//! looked up without allocating, choice options are matched in place, and
//! only free-text answers are copied.
use std::fmt;

use analytics::panel::{Cell, Kind, PanelQuestion};
use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Decodes answers documents of one question set.
pub struct RowDecoder {
    kinds: Vec<Kind>,
    /// Key → question index. Fx hashing: a key is looked up for every
    /// answer of every row, and keys are the questionnaire's own.
    index: FxHashMap<String, usize>,
}

impl RowDecoder {
    pub fn new(questions: &[PanelQuestion]) -> Self {
        Self {
            kinds: questions.iter().map(|q| q.kind.clone()).collect(),
            index: questions
                .iter()
                .enumerate()
                .map(|(i, q)| (q.key.clone(), i))
                .collect(),
        }
    }

    /// The cells of one answers object, aligned with the questions; the
    /// same cells [`crate::research::panel::cells`] makes of the parsed document.
    pub fn decode(&self, json: &[u8]) -> Result<Vec<Cell>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let cells = RowSeed(self).deserialize(&mut de)?;
        de.end()?;
        Ok(cells)
    }
}

struct RowSeed<'a>(&'a RowDecoder);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Vec<Cell>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Vec<Cell>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an answers object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut cells = vec![Cell::Blank; self.0.kinds.len()];
        while let Some(i) = map.next_key_seed(KeySeed(&self.0.index))? {
            match i {
                // A repeated key: the last one wins, as in a parsed object.
                Some(i) => cells[i] = map.next_value_seed(AnswerSeed(&self.0.kinds[i]))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(cells)
    }
}

/// A key → its question's index, without allocating for plain keys.
struct KeySeed<'a>(&'a FxHashMap<String, usize>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a question key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(v).copied())
    }
}

/// One answer as the cell its question's kind makes of it; a value of
/// another shape is blank (a multi-choice answer is a list, `[]` included),
/// like [`crate::research::panel::cells`].
struct AnswerSeed<'a>(&'a Kind);

impl<'de> DeserializeSeed<'de> for AnswerSeed<'_> {
    type Value = Cell;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl AnswerSeed<'_> {
    fn number(&self, x: f64) -> Cell {
        match self.0 {
            Kind::Rating | Kind::Nps | Kind::Number => Cell::Num(x),
            _ => Cell::Blank,
        }
    }
}

impl<'de> Visitor<'de> for AnswerSeed<'_> {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an answer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
        Ok(match self.0 {
            Kind::Single { options } => options
                .iter()
                .position(|o| o == v)
                .map(|i| Cell::Choice(i as u16))
                .unwrap_or(Cell::Blank),
            Kind::Text | Kind::Other => Cell::Text(v.to_owned()),
            _ => Cell::Blank,
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
        Ok(self.number(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
        Ok(self.number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
        Ok(self.number(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Cell, E> {
        Ok(Cell::Blank)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Blank)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
        let Kind::Multi { options } = self.0 else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Cell::Blank);
        };
        let mut mask = 0u64;
        while let Some(i) = seq.next_element_seed(OptionSeed(options))? {
            if let Some(i) = i.filter(|&i| i < 64) {
                mask |= 1 << i;
            }
        }
        Ok(Cell::Multi(mask))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cell, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Cell::Blank)
    }
}

/// One element of a multi-choice list → its option's index (non-strings
/// and unknown options: none).
struct OptionSeed<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for OptionSeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OptionSeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an option")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|o| o == v))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics::panel::Role;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn questions() -> Vec<PanelQuestion> {
        let q = |key: &str, kind: Kind| PanelQuestion {
            key: key.into(),
            kind,
            role: Role::None,
            factor: None,
        };
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        vec![
            q(
                "city",
                Kind::Single {
                    options: opts(&["msk", "spb", "Кострома"]),
                },
            ),
            q(
                "src",
                Kind::Multi {
                    options: opts(&["social", "tv", "friends"]),
                },
            ),
            q("price", Kind::Rating),
            q("nps", Kind::Nps),
            q("budget", Kind::Number),
            q("comment", Kind::Text),
            q("visit", Kind::Other),
        ]
    }

    fn same_as_parsed(answers: &Value) {
        same_as_parsed_text(&answers.to_string());
    }

    fn same_as_parsed_text(text: &str) {
        let qs = questions();
        let parsed: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            RowDecoder::new(&qs).decode(text.as_bytes()).unwrap(),
            crate::research::panel::cells(&qs, &parsed),
            "{text}"
        );
    }

    #[test]
    fn decoded_rows_equal_the_cells_of_the_parsed_document() {
        for answers in [
            json!({"city": "spb", "src": ["tv", "friends"], "price": 4, "nps": 0,
                   "budget": 1234567.25, "comment": "Кв. \"№5\"\\t\n", "visit": "2026-01-02"}),
            json!({"city": "Кострома", "src": [], "price": 1, "budget": -0.5}),
            json!({"src": ["social", 3, null, ["tv"], {"a": 1}, "nope"], "comment": null, "nps": 10}),
            json!({"city": 3, "src": "social", "price": "4", "nps": null, "comment": 5,
                   "budget": [1], "visit": {"d": 1}, "other": {"deep": [1, {"x": "y"}]}}),
            json!({}),
        ] {
            same_as_parsed(&answers);
        }
        // Escapes in keys and values, and a repeated key (the last wins).
        same_as_parsed_text(r#"{"c\u006fmment":"a\u0062","city":"ms\u006b","nps":1,"nps":2}"#);
    }

    #[test]
    fn an_empty_selection_is_an_answer_and_null_a_blank() {
        let qs = questions();
        let src = |text: &str| RowDecoder::new(&qs).decode(text.as_bytes()).unwrap()[1].clone();
        assert_eq!(src(r#"{"src":[]}"#), Cell::Multi(0));
        assert_eq!(src(r#"{"src":["tv"]}"#), Cell::Multi(0b010));
        assert_eq!(src(r#"{"src":null}"#), Cell::Blank);
        assert_eq!(src(r#"{}"#), Cell::Blank);
        assert_eq!(src(r#"{"src":"tv"}"#), Cell::Blank);
    }

    #[test]
    fn a_document_that_is_not_an_object_is_an_error() {
        let qs = questions();
        for bad in ["[1]", "\"x\"", "{\"city\":", "{} {}"] {
            assert!(
                RowDecoder::new(&qs).decode(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    fn answer() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-1000i64..1000).prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            prop::sample::select(vec![
                "msk",
                "spb",
                "Кострома",
                "social",
                "tv",
                "friends",
                "x"
            ])
            .prop_map(Value::from),
            "[a-zA-Zа-я \\\\\"\t\n.,!]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    proptest! {
        #[test]
        fn decoding_equals_parsing_for_any_document(
            entries in prop::collection::vec(
                (prop::sample::select(vec!["city", "src", "price", "nps", "budget", "comment", "visit", "zzz"]), answer()),
                0..10,
            )
        ) {
            let doc = Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
            same_as_parsed(&doc);
        }
    }
}

//! A contact's attributes as a rescoring holds them. PostgreSQL's bulk
//! read keeps each contact's JSON text as sent (a quarter of the memory of
//! the parsed map, and a million parsed maps cost more in fresh pages the
//! kernel must zero than in parsing); scoring parses one contact at a time
//! and drops it at once. The text is read straight into the map, with the
//! same reading as [`super::attr_values`].
use std::collections::BTreeMap;

use analytics::funnel::AttrValue;

/// A contact's attributes: the JSON text of an object, or the map.
pub(crate) enum Attrs {
    Json(Box<[u8]>),
    Map(BTreeMap<String, AttrValue>),
}

impl Default for Attrs {
    fn default() -> Self {
        Attrs::Map(BTreeMap::new())
    }
}

impl Attrs {
    /// The map (parsed, or a copy). Text that is not an object is no
    /// attributes, as [`super::attr_values`] reads a value that is not one
    /// (PostgreSQL's `json` type has checked that it is JSON).
    pub(crate) fn to_map(&self) -> BTreeMap<String, AttrValue> {
        match self {
            Attrs::Json(text) => attributes(text).unwrap_or_default(),
            Attrs::Map(m) => m.clone(),
        }
    }

    /// The map, leaving no attributes behind.
    pub(crate) fn take_map(&mut self) -> BTreeMap<String, AttrValue> {
        match std::mem::take(self) {
            Attrs::Json(text) => attributes(&text).unwrap_or_default(),
            Attrs::Map(m) => m,
        }
    }
}

/// An attribute value as JSON gives it; `Skip` for what attributes never
/// hold (null, objects): the same reading as [`super::attr_values`].
enum Json {
    Value(AttrValue),
    Skip,
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an attribute value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Value(AttrValue::Text(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Value(AttrValue::Text(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Value(AttrValue::Number(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Value(AttrValue::Number(v as f64)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Value(AttrValue::Number(v as f64)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Value(AttrValue::Bool(v)))
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Skip)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                // A list of strings: its items joined with `;`.
                let mut out = String::new();
                let mut first = true;
                while let Some(item) = a.next_element::<serde_json::Value>()? {
                    if let Some(s) = item.as_str() {
                        if !first {
                            out.push(';');
                        }
                        out.push_str(s);
                        first = false;
                    }
                }
                Ok(Json::Value(AttrValue::Text(out)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Json::Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// A contact's attributes straight from their JSON text into the map the
/// rules and the model read.
fn attributes(text: &[u8]) -> Result<BTreeMap<String, AttrValue>, String> {
    let raw: Vec<(String, Json)> = serde_json::from_slice::<JsonObject>(text)
        .map_err(|e| format!("attributes: {e}"))?
        .0;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| match v {
            Json::Value(v) => Some((k, v)),
            Json::Skip => None,
        })
        .collect())
}

/// A JSON object's entries in order (later duplicates win when collected).
struct JsonObject(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<JsonObject, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(16));
                while let Some(entry) = a.next_entry::<String, Json>()? {
                    out.push(entry);
                }
                Ok(JsonObject(out))
            }
            // Anything else is no attributes at all.
            fn visit_unit<E>(self) -> Result<JsonObject, E> {
                Ok(JsonObject(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_as_attr_values_does() {
        let text = br#"{"city":"Kazan","age":31,"vip":true,"tags":["a",1,"b"],"none":null,"obj":{"x":[1,{"y":2}]},"f":2.5}"#;
        let v: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert_eq!(attributes(text).unwrap(), super::super::attr_values(&v));
        assert!(attributes(b"{").is_err());
        assert!(attributes(b"null").unwrap().is_empty());
        for text in [&b"[1, 2]"[..], b"3", b"\"x\""] {
            let v: serde_json::Value = serde_json::from_slice(text).unwrap();
            assert_eq!(
                Attrs::Json(text.into()).to_map(),
                super::super::attr_values(&v)
            );
        }
        let mut a = Attrs::Json(text.as_slice().into());
        assert_eq!(a.take_map(), super::super::attr_values(&v));
        assert!(a.take_map().is_empty());
    }
}

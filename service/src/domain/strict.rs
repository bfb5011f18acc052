//! A serde `Deserializer` wrapper under which a struct is read only from a
//! JSON object.
//!
//! serde's derived `Deserialize` for a struct with named fields also
//! accepts a sequence of its fields in declaration order, so `[null, null]`
//! is a valid `UpdateAgencySettings` (all fields absent) and `["Acme"]` a
//! valid sign-up prefix. The OpenAPI document says "object", and so must the
//! server: wrapped in [`Strict`], every `deserialize_struct` (at any depth,
//! struct variants included) refuses a sequence with serde's usual
//! "invalid type" error, naming the offending field's path like any other.
//!
//! JSON Schema counts `3.0` as an integer, as the OpenAPI document's
//! `integer` does; serde_json gives it to an integer field as a float,
//! which the field refuses. Under [`Strict`] a float with no fractional
//! part read where an integer is expected is passed on as that integer
//! (still checked against the field's range); any other float is refused.
//!
//! Values buffered by serde itself (inside `#[serde(flatten)]` or untagged
//! enums) are read by serde's private deserializer, outside this wrapper.
//!
//! Every parser of outside JSON goes through [`deserialize`]: REST bodies
//! and GraphQL inputs (`api::extract::parse_json`), import lines, and the
//! bodies kept as a `Value` before they are typed (purchases, JTBD rules).
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

/// Wraps a deserializer; see the module's documentation.
pub struct Strict<D>(pub D);

/// `serde_path_to_error::deserialize` under [`Strict`]: the value, or the
/// error with the path of the offending field.
pub fn deserialize<'de, D, T>(d: D) -> Result<T, serde_path_to_error::Error<D::Error>>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde_path_to_error::deserialize(Strict(d))
}

/// A visitor that refuses sequences when it reads a struct and takes a
/// whole float where it reads an integer.
struct Wrap<V> {
    inner: V,
    object_only: bool,
    integer: bool,
}

impl<V> Wrap<V> {
    fn any(inner: V) -> Self {
        Self {
            inner,
            object_only: false,
            integer: false,
        }
    }

    fn object(inner: V) -> Self {
        Self {
            inner,
            object_only: true,
            integer: false,
        }
    }

    fn integer(inner: V) -> Self {
        Self {
            inner,
            object_only: false,
            integer: true,
        }
    }
}

/// 2^63 and 2^64 as floats: the bounds of a whole float that fits i64 / u64.
const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;
const U64_BOUND: f64 = 18_446_744_073_709_551_616.0;

macro_rules! forward_integer {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(Wrap::integer(visitor))
            }
        )*
    };
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(Wrap::any(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_integer!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
    );

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap::any(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap::any(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap::any(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Wrap::any(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, Wrap::object(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap::any(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($t:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $t) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<V::Value, E> {
        self.visit_f64(f64::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        if self.integer && v.fract() == 0.0 {
            if (-I64_BOUND..I64_BOUND).contains(&v) {
                return self.inner.visit_i64(v as i64);
            }
            if (0.0..U64_BOUND).contains(&v) {
                return self.inner.visit_u64(v as u64);
            }
        }
        self.inner.visit_f64(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.object_only {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        self.inner.visit_seq(StrictAccess(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(StrictAccess(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(StrictAccess(data))
    }
}

/// A seed whose value is read through [`Strict`].
struct StrictSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

/// The elements, entries or variant of a container, read through [`Strict`].
struct StrictAccess<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(StrictSeed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for StrictAccess<A> {
    type Error = A::Error;
    type Variant = StrictAccess<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(StrictSeed(seed))?;
        Ok((value, StrictAccess(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(StrictSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::any(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap::object(visitor))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde::Deserialize;

    use super::deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        name: Option<String>,
        inner: Option<Inner>,
        tags: Option<Vec<String>>,
        pair: Option<(u8, u8)>,
        shape: Option<Shape>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Dot,
        Square { side: u8 },
    }

    fn strict(json: &str) -> Result<Patch, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        deserialize::<_, Patch>(&mut de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn plain_serde_takes_an_array_for_a_struct() {
        // Why the wrapper exists.
        assert!(serde_json::from_str::<Patch>("[null, null, null, null, null]").is_ok());
    }

    #[test]
    fn structs_are_read_only_from_objects_at_every_depth() {
        for (json, path) in [
            ("[]", "."),
            ("[null, null]", "."),
            (r#"{"inner": [1]}"#, "inner"),
            (r#"{"shape": {"square": [2]}}"#, "shape.square"),
        ] {
            let err = strict(json).unwrap_err();
            assert!(
                err.starts_with(&format!("{path}: invalid type: sequence")),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn a_value_is_held_to_the_same() {
        let v = serde_json::json!({"inner": [null]});
        let err = deserialize::<_, Patch>(v).unwrap_err();
        assert_eq!(err.path().to_string(), "inner");
    }

    #[test]
    fn everything_else_reads_as_before() {
        let json = r#"{"name": "Acme", "inner": {"a": 3}, "tags": ["x"], "pair": [1, 2], "shape": {"square": {"side": 4}}}"#;
        assert_eq!(
            strict(json).unwrap(),
            serde_json::from_str::<Patch>(json).unwrap()
        );
        assert_eq!(
            strict(r#"{"shape": "dot"}"#).unwrap().shape,
            Some(Shape::Dot)
        );
        let unknown = strict(r#"{"nmae": "x"}"#).unwrap_err();
        assert!(unknown.contains("unknown field `nmae`"), "{unknown}");
        let scalar = strict("1").unwrap_err();
        assert!(scalar.contains("invalid type: integer `1`"), "{scalar}");
    }

    #[test]
    fn a_whole_float_is_an_integer_and_nothing_else_is() {
        #[derive(Debug, Deserialize)]
        struct Ints {
            small: Option<i32>,
            big: Option<u64>,
            real: Option<f64>,
        }
        let read = |json: &str| {
            let mut de = serde_json::Deserializer::from_str(json);
            deserialize::<_, Ints>(&mut de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        };
        let ok = read(r#"{"small": -299.0, "big": 1e19, "real": 2.0}"#).unwrap();
        assert_eq!(ok.small, Some(-299));
        assert_eq!(ok.big, Some(10_000_000_000_000_000_000));
        assert_eq!(ok.real, Some(2.0));
        let fraction = read(r#"{"small": 1.5}"#).unwrap_err();
        assert!(
            fraction.starts_with("small: invalid type: floating point"),
            "{fraction}"
        );
        let range = read(r#"{"small": 3e9}"#).unwrap_err();
        assert!(
            range.starts_with("small: invalid value: integer"),
            "{range}"
        );
    }
}

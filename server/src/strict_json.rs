//! JSON bodies read strictly: an object that names a key twice is refused.
//!
//! serde_json keeps the last of repeated keys. A proxy or firewall in front
//! of the hub that keeps the first then sees another request than the hub
//! runs (`{"query": "{ me { kind } }", "query": "mutation …"}`), and a FHIR
//! resource naming `resourceType` twice is whichever type came last. RFC
//! 8259 leaves repeated names to the receiver; FHIR's JSON format and the
//! GraphQL-over-HTTP request object have one value per name. So bodies of
//! `/graphql` and `/fhir` are refused (`400`) when an object repeats a key,
//! at any depth, naming the key and where it is.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Keys of one object checked by a scan of a list up to this many; a larger
/// object keeps them in a set.
const SCAN: usize = 32;

/// `bytes` as a JSON value, refused when an object repeats a key.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    check(bytes)?;
    serde_json::from_slice(bytes)
}

/// Numbers as GraphQL's scalars read them. The hub reads JSON keeping each
/// number's text (serde_json's `arbitrary_precision`, which the FHIR model
/// needs for decimals); a number whose text is not the plain form of a
/// 64-bit integer or float — `3.65e1`, `1E-7` as JavaScript's
/// `JSON.stringify` writes it, 19 significant digits — then reaches
/// async-graphql as an object, and a `Float` argument refused it. Each is
/// made the number it denotes: an integer when it is a whole one within
/// 64 bits (`1e2` is `100`), else the nearest float. A number beyond any
/// float (`1e400`) is left as it is, refused as not a number.
pub fn plain_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => {
            let Some(f) = n.as_f64().filter(|f| f.is_finite()) else {
                return;
            };
            // Whole and within i64: an integer (2^63 is the first float past it).
            *n = if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
            {
                serde_json::Number::from(f as i64)
            } else {
                match serde_json::Number::from_f64(f) {
                    Some(plain) => plain,
                    None => return,
                }
            };
        }
        Value::Array(items) => items.iter_mut().for_each(plain_numbers),
        Value::Object(map) => map.values_mut().for_each(plain_numbers),
        _ => {}
    }
}

/// Whether `bytes` is JSON whose objects each name a key once (the error
/// says which key repeats, and where).
pub fn check(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Unique.deserialize(&mut de)?;
    de.end()
}

/// Walks a value without keeping it, refusing repeated keys.
#[derive(Clone, Copy)]
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut listed: Vec<Cow<'de, str>> = Vec::new();
        let mut set: std::collections::HashSet<Cow<'de, str>> = std::collections::HashSet::new();
        while let Some(Key(key)) = map.next_key()? {
            let repeated = if listed.len() < SCAN {
                let seen = listed.contains(&key);
                listed.push(key.clone());
                seen
            } else {
                if set.is_empty() {
                    set.extend(listed.iter().cloned());
                }
                !set.insert(key.clone())
            };
            if repeated {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} is given twice in one object"
                )));
            }
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// An object's key, borrowed from the body unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_told() {
        for (text, key) in [
            (r#"{"query": "a", "query": "b"}"#, "query"),
            (r#"{"a": {"b": 1, "c": [{"d": 1, "d": 2}]}}"#, "d"),
            // An escape spells the same key.
            (r#"{"id": 1, "\u0069d": 2}"#, "id"),
        ] {
            let e = from_slice(text.as_bytes()).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{key:?} is given twice")),
                "{text}: {e}"
            );
        }
        // Past the scanned list, the set.
        let many: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}, \"k77\": 0}}", many.join(", "));
        assert!(from_slice(text.as_bytes()).is_err());
    }

    #[test]
    fn numbers_are_made_plain() {
        let mut v = from_slice(
            br#"{"a": [3.65e1, 1E-7, 1e2, 43.12345678901234567, 7, -2, 36.5, 1e400, 18446744073709551615], "b": {"c": 2.5E0}}"#,
        )
        .unwrap();
        plain_numbers(&mut v);
        let a = &v["a"];
        assert_eq!(a[0].as_f64(), Some(36.5));
        assert_eq!(a[1].as_f64(), Some(1e-7));
        assert_eq!(a[2].as_i64(), Some(100));
        assert_eq!(a[3].as_f64(), "43.12345678901234567".parse::<f64>().ok());
        assert_eq!(a[4].as_i64(), Some(7));
        assert_eq!(a[5].as_i64(), Some(-2));
        assert_eq!(a[6].as_f64(), Some(36.5));
        // Beyond any float: left, for the scalar to refuse.
        assert!(a[7].as_f64().is_none_or(|f| !f.is_finite()), "{}", a[7]);
        assert_eq!(a[8].as_u64(), Some(u64::MAX));
        assert_eq!(v["b"]["c"].as_f64(), Some(2.5));
        // As async-graphql reads them: numbers, not objects.
        for item in a.as_array().unwrap().iter().take(7) {
            let read: async_graphql::Value = serde_json::from_value(item.clone()).unwrap();
            assert!(matches!(read, async_graphql::Value::Number(_)), "{item}");
        }
    }

    #[test]
    fn json_without_repeats_reads_as_serde_json_reads_it() {
        let many: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        for text in [
            r#"{"query": "{ me { id } }", "variables": {"a": [1, 2.5, -3, 1e400, null, true, "x"]}}"#.to_string(),
            // The same key in sibling objects is no repeat.
            r#"[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]"#.to_string(),
            "123456789012345678901234567890".to_string(),
            "\"text\"".to_string(),
            format!("{{{}}}", many.join(", ")),
        ] {
            let want: Result<Value, _> = serde_json::from_slice(text.as_bytes());
            match want {
                Ok(want) => assert_eq!(from_slice(text.as_bytes()).unwrap(), want, "{text}"),
                Err(_) => assert!(from_slice(text.as_bytes()).is_err(), "{text}"),
            }
        }
        // Not JSON, or JSON and more: refused as serde_json refuses it.
        for text in ["{", "{} x", "", "[1,]"] {
            assert!(from_slice(text.as_bytes()).is_err(), "{text}");
        }
    }
}

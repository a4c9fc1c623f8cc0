//! Typed attribute values, as OTLP's `AnyValue` but independent of it.

use serde::{Deserialize, Serialize};

/// One attribute value. The serde form is externally tagged with short names so the
/// store can keep types exact (an int stays an int, bytes stay bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    #[serde(rename = "s")]
    Str(String),
    #[serde(rename = "b")]
    Bool(bool),
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "d")]
    Double(f64),
    #[serde(rename = "x")]
    Bytes(#[serde(with = "hex_bytes")] Vec<u8>),
    #[serde(rename = "a")]
    Array(Vec<AttrValue>),
    #[serde(rename = "m")]
    Map(Attributes),
    /// An `AnyValue` with no value set (allowed by OTLP, meaning "empty").
    #[serde(rename = "n")]
    Empty,
}

impl AttrValue {
    /// The value as a user would type it in a search box.
    pub fn to_search_text(&self) -> Option<String> {
        match self {
            AttrValue::Str(text) => Some(text.clone()),
            AttrValue::Bool(value) => Some(value.to_string()),
            AttrValue::Int(value) => Some(value.to_string()),
            AttrValue::Double(value) => Some(value.to_string()),
            AttrValue::Bytes(_) | AttrValue::Array(_) | AttrValue::Map(_) | AttrValue::Empty => {
                None
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(text) => Some(text),
            _ => None,
        }
    }
}

/// Attributes in their original order; keys are unique after conversion (last one wins).
pub type Attributes = Vec<(String, AttrValue)>;

/// Looks up one attribute by key.
pub fn attr_get<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a AttrValue> {
    attributes
        .iter()
        .find(|(candidate, _)| candidate == key)
        .map(|(_, value)| value)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

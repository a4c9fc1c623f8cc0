//! OTLP `KeyValue` / `AnyValue` → model attributes, moving strings and bytes, deduplicating
//! keys (the last value wins, kept at the key's first position).

use std::collections::HashMap;
use std::collections::HashSet;

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};

use crate::model::{AttrValue, Attributes};

/// Keeps at most `max_count` attributes (the rest are dropped, oldest kept) and cuts string and
/// bytes values longer than `max_value_bytes` (strings at a character boundary; arrays to
/// `max_count` elements, nested values alike). Returns how many were dropped and how many
/// attributes were dropped or cut in all.
pub(super) fn limit_attributes(
    attributes: &mut Attributes,
    max_count: usize,
    max_value_bytes: usize,
) -> (u32, u64) {
    let dropped = attributes.len().saturating_sub(max_count);
    attributes.truncate(max_count);
    let mut changed = dropped as u64;
    for (_, value) in attributes.iter_mut() {
        changed += u64::from(limit_value(value, max_count, max_value_bytes));
    }
    (u32::try_from(dropped).unwrap_or(u32::MAX), changed)
}

fn limit_value(value: &mut AttrValue, max_count: usize, max_value_bytes: usize) -> bool {
    match value {
        AttrValue::Str(text) if text.len() > max_value_bytes => {
            let mut end = max_value_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            true
        }
        AttrValue::Bytes(bytes) if bytes.len() > max_value_bytes => {
            bytes.truncate(max_value_bytes);
            true
        }
        AttrValue::Array(values) => {
            let cut = values.len() > max_count;
            values.truncate(max_count);
            values.iter_mut().fold(cut, |changed, value| {
                limit_value(value, max_count, max_value_bytes) | changed
            })
        }
        AttrValue::Map(entries) => limit_attributes(entries, max_count, max_value_bytes).1 > 0,
        _ => false,
    }
}

/// Up to this many keys a pairwise scan for duplicates beats hashing.
const MAX_KEYS_FOR_PAIRWISE_SCAN: usize = 16;

pub(super) fn convert_attributes(key_values: Vec<KeyValue>) -> Attributes {
    if has_duplicate_keys(&key_values) {
        return convert_deduplicating(key_values);
    }
    key_values
        .into_iter()
        .map(|key_value| {
            (
                key_value.key,
                convert_any_value(key_value.value.and_then(|v| v.value)),
            )
        })
        .collect()
}

pub(super) fn convert_any_value(value_opt: Option<any_value::Value>) -> AttrValue {
    use any_value::Value;
    let Some(value) = value_opt else {
        return AttrValue::Empty;
    };
    match value {
        Value::StringValue(text) => AttrValue::Str(text),
        Value::BoolValue(flag) => AttrValue::Bool(flag),
        Value::IntValue(number) => AttrValue::Int(number),
        Value::DoubleValue(number) => AttrValue::Double(number),
        Value::BytesValue(bytes) => AttrValue::Bytes(bytes),
        Value::ArrayValue(array) => AttrValue::Array(
            array
                .values
                .into_iter()
                .map(|element| convert_any_value(element.value))
                .collect(),
        ),
        Value::KvlistValue(list) => AttrValue::Map(convert_attributes(list.values)),
        // An index into a profiles dictionary; meaningless outside profiles.
        Value::StringValueStrindex(_) => AttrValue::Empty,
    }
}

fn has_duplicate_keys(key_values: &[KeyValue]) -> bool {
    if key_values.len() <= MAX_KEYS_FOR_PAIRWISE_SCAN {
        return key_values.iter().enumerate().any(|(index, key_value)| {
            key_values[..index]
                .iter()
                .any(|earlier| earlier.key == key_value.key)
        });
    }
    let mut seen = HashSet::with_capacity(key_values.len());
    !key_values
        .iter()
        .all(|key_value| seen.insert(key_value.key.as_str()))
}

/// The rare path: hashing keeps a hostile request with many keys linear.
fn convert_deduplicating(key_values: Vec<KeyValue>) -> Attributes {
    let mut attributes: Attributes = Vec::with_capacity(key_values.len());
    let mut index_by_key: HashMap<String, usize> = HashMap::with_capacity(key_values.len());
    for key_value in key_values {
        let value = convert_any_value(key_value.value.and_then(|v| v.value));
        match index_by_key.get(&key_value.key) {
            Some(&index) => attributes[index].1 = value,
            None => {
                index_by_key.insert(key_value.key.clone(), attributes.len());
                attributes.push((key_value.key, value));
            }
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList};

    use super::*;

    fn key_value(key: &str, value_opt: Option<any_value::Value>) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: value_opt }),
            ..Default::default()
        }
    }

    fn int(number: i64) -> Option<any_value::Value> {
        Some(any_value::Value::IntValue(number))
    }

    #[test]
    fn converts_every_value_type() {
        use any_value::Value;
        let nested = KeyValueList {
            values: vec![key_value("inner", Some(Value::BoolValue(false)))],
        };
        let array = ArrayValue {
            values: vec![AnyValue { value: int(1) }, AnyValue { value: None }],
        };
        let attributes = convert_attributes(vec![
            key_value("s", Some(Value::StringValue("text".into()))),
            key_value("b", Some(Value::BoolValue(true))),
            key_value("i", int(-42)),
            key_value("d", Some(Value::DoubleValue(0.25))),
            key_value("x", Some(Value::BytesValue(vec![0xde, 0xad]))),
            key_value("a", Some(Value::ArrayValue(array))),
            key_value("m", Some(Value::KvlistValue(nested))),
            key_value("e", None),
            KeyValue {
                key: "no_value".into(),
                value: None,
                ..Default::default()
            },
            key_value("strindex", Some(Value::StringValueStrindex(3))),
        ]);
        let expected = vec![
            ("s".to_owned(), AttrValue::Str("text".into())),
            ("b".to_owned(), AttrValue::Bool(true)),
            ("i".to_owned(), AttrValue::Int(-42)),
            ("d".to_owned(), AttrValue::Double(0.25)),
            ("x".to_owned(), AttrValue::Bytes(vec![0xde, 0xad])),
            (
                "a".to_owned(),
                AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Empty]),
            ),
            (
                "m".to_owned(),
                AttrValue::Map(vec![("inner".to_owned(), AttrValue::Bool(false))]),
            ),
            ("e".to_owned(), AttrValue::Empty),
            ("no_value".to_owned(), AttrValue::Empty),
            ("strindex".to_owned(), AttrValue::Empty),
        ];
        assert_eq!(attributes, expected);
    }

    #[test]
    fn last_duplicate_wins_at_first_position() {
        let attributes = convert_attributes(vec![
            key_value("a", int(1)),
            key_value("b", int(2)),
            key_value("a", int(3)),
        ]);
        assert_eq!(
            attributes,
            vec![
                ("a".to_owned(), AttrValue::Int(3)),
                ("b".to_owned(), AttrValue::Int(2)),
            ]
        );
    }

    #[test]
    fn deduplicates_many_keys_by_hashing() {
        let mut key_values: Vec<KeyValue> = (0..40)
            .map(|index| key_value(&format!("k{index}"), int(index)))
            .collect();
        key_values.push(key_value("k7", int(700)));
        let attributes = convert_attributes(key_values);
        assert_eq!(attributes.len(), 40);
        assert_eq!(attributes[7], ("k7".to_owned(), AttrValue::Int(700)));
        assert_eq!(attributes[39], ("k39".to_owned(), AttrValue::Int(39)));
    }

    #[test]
    fn duplicate_keys_inside_maps_are_deduplicated_too() {
        let nested = KeyValueList {
            values: vec![key_value("k", int(1)), key_value("k", int(2))],
        };
        let attributes = convert_attributes(vec![key_value(
            "m",
            Some(any_value::Value::KvlistValue(nested)),
        )]);
        assert_eq!(
            attributes[0].1,
            AttrValue::Map(vec![("k".to_owned(), AttrValue::Int(2))])
        );
    }
}

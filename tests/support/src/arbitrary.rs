//! Arbitrary JSON for property tests of vendor adapters: any JSON type in any field.

use proptest::prelude::*;
use serde_json::Value;

/// JSON values up to three levels deep whose strings come from `text` and whose object keys
/// are mostly `fields` (the names an adapter reads) and sometimes anything.
pub fn json(
    text: BoxedStrategy<String>,
    fields: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text.prop_map(Value::String),
    ];
    let key = key(fields);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An object key: mostly one of `fields`, sometimes anything.
pub fn key(fields: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        prop::sample::select(fields).prop_map(str::to_owned),
        "[A-Za-z_]{0,8}"
    ]
}

//! Resource tags as a Repository declares them: a map of key to value in the API and its
//! schema, kept as a vector sorted by key. Every Repository in the controller's store carries its
//! tags, and a `BTreeMap` allocates a node of 544 bytes for even one tag; the vector takes 48
//! bytes a tag (the strings aside), which at 100,000 objects is ~45 MB less.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Tags, key → value, each key once, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    /// The value of tag `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).ok().map(|at| self.0[at].1.as_str())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// (key, value) in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.into_iter()
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags as a map (for code that adds to them).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
}

impl From<BTreeMap<String, String>> for Tags {
    fn from(map: BTreeMap<String, String>) -> Tags {
        // A map's iteration is sorted by key, each key once; collected to the exact length.
        Tags(map.into_iter().collect())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    /// The last value of a key repeated wins, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Tags {
        let map: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Tags::from(map)
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tags, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Tags::from)
    }
}

/// The schema of the map it is in the API, so the CRD is the same as with a `BTreeMap`.
impl JsonSchema for Tags {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        BTreeMap::<String, String>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        BTreeMap::<String, String>::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        BTreeMap::<String, String>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_the_map_it_is_in_the_api() {
        let tags: Tags = serde_json::from_value(json!({"team": "a", "env": "prod"})).unwrap();
        assert_eq!(tags.keys().collect::<Vec<_>>(), ["env", "team"]);
        assert_eq!(tags.get("team"), Some("a"));
        assert_eq!(tags.get("nope"), None);
        assert!(tags.contains_key("env") && !tags.contains_key("en"));
        assert_eq!(
            serde_json::to_value(&tags).unwrap(),
            json!({"env": "prod", "team": "a"})
        );
        let empty: Tags = serde_json::from_value(json!({})).unwrap();
        assert!(empty.is_empty());
        assert!(serde_json::from_value::<Tags>(json!({"k": 1})).is_err());
    }

    #[test]
    fn the_last_value_of_a_repeated_key_wins_as_in_a_map() {
        let tags: Tags = [("b", "1"), ("a", "2"), ("b", "3")].into_iter().collect();
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            [
                (&"a".to_string(), &"2".to_string()),
                (&"b".to_string(), &"3".to_string())
            ]
        );
        assert_eq!(tags.len(), 2);
        assert_eq!(
            tags.to_map(),
            BTreeMap::from([("a".into(), "2".into()), ("b".into(), "3".into())])
        );
    }

    #[test]
    fn its_schema_is_the_maps() {
        let mut generator = SchemaGenerator::default();
        assert_eq!(
            Tags::json_schema(&mut generator),
            BTreeMap::<String, String>::json_schema(&mut SchemaGenerator::default())
        );
        assert!(Tags::inline_schema());
    }
}

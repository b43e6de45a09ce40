//! `JSONLogic`: lets data through when a [JSONLogic](https://jsonlogic.com) rule holds on it,
//! as EdgeX's `JSONLogic` transform does. The rule (parameter `Rule`) is evaluated on the
//! input's JSON (an event as EdgeX serializes it: `{"deviceName": …, "readings": [{…}]}`);
//! a truthy result passes the input on unchanged, anything else ends the pipeline for it.
//!
//! Rules are compiled once, when the pipeline is built, by `datalogic-rs` (the JSONLogic
//! baseline operators: `==`, `===`, `!=`, `!==`, `<`, `<=`, `>`, `>=`, `and`, `or`, `!`, `!!`,
//! `if`, `?:`, `var` with dotted paths and defaults, `missing`, `missing_some`, `in`, `cat`,
//! `substr`, `+`, `-`, `*`, `/`, `%`, `min`, `max`, `map`, `filter`, `reduce`, `all`, `some`,
//! `none`, `merge`). A rule that is not JSON or names an unknown operator fails at start.
//!
//! EdgeX requires the result to be a JSON boolean and fails the message otherwise; here any
//! result counts by JSONLogic's truthiness (`0`, `""`, `[]`, `null`, `false` are false), so
//! `{"var": "tags.alarm"}` works as a rule on its own.

use std::sync::Arc;

use async_trait::async_trait;
use datalogic_rs::{Engine, Logic};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use super::params::ParameterError;
use crate::{Context, Data, Function, FunctionError};

/// `JSONLogic`'s parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLogicSettings {
    /// The rule: JSON text (as EdgeX writes it, `"{\"==\": [{\"var\": \"deviceName\"}, \"d1\"]}"`)
    /// or, in YAML, the rule as a map.
    #[serde(rename = "Rule", deserialize_with = "rule")]
    pub rule: Json,
}

fn rule<'de, D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
    match Json::deserialize(d)? {
        Json::String(text) if text.trim().is_empty() => Err(serde::de::Error::custom("must not be empty")),
        Json::String(text) => serde_json::from_str(&text)
            .map_err(|e| serde::de::Error::custom(format!("'{}' is not JSON: {e}", shorten(&text)))),
        other => Ok(other),
    }
}

/// At most 80 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The first operation in `rule` (an object of one key) that `engine` does not know.
fn unknown_operator<'r>(engine: &Engine, rule: &'r Json) -> Option<&'r str> {
    match rule {
        Json::Array(items) => items.iter().find_map(|item| unknown_operator(engine, item)),
        Json::Object(map) if map.len() == 1 => {
            let (operator, arguments) = map.iter().next()?;
            if engine.builtin_operator_names().any(|known| known == operator) {
                unknown_operator(engine, arguments)
            } else {
                Some(operator)
            }
        }
        Json::Object(map) => map.values().find_map(|value| unknown_operator(engine, value)),
        _ => None,
    }
}

/// Passes its input on when the rule is truthy on the input's JSON.
pub struct JsonLogic {
    engine: Arc<Engine>,
    logic: Logic,
}

impl std::fmt::Debug for JsonLogic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLogic").finish_non_exhaustive()
    }
}

impl JsonLogic {
    /// Compiles `rule`; a rule JSONLogic cannot run (an unknown operator, wrong arguments) is an
    /// error naming `Rule`.
    pub fn new(rule: &Json) -> Result<Self, ParameterError> {
        let engine = Arc::new(Engine::new());
        if let Some(operator) = unknown_operator(&engine, rule) {
            return Err(ParameterError::new("Rule", format!("'{}' is not a JSONLogic operator", shorten(operator))));
        }
        let logic =
            engine.compile(rule).map_err(|e| ParameterError::new("Rule", format!("not a JSONLogic rule: {e}")))?;
        Ok(Self { engine, logic })
    }

    /// From EdgeX's parameters.
    pub fn from_settings(settings: &JsonLogicSettings) -> Result<Self, ParameterError> {
        Self::new(&settings.rule)
    }

    /// Whether the rule is truthy on `data`; an error when the rule cannot be evaluated on it.
    pub fn matches(&self, data: &Json) -> Result<bool, String> {
        let arena = datalogic_rs::bumpalo::Bump::new();
        let result = self.engine.evaluate(&self.logic, data, &arena).map_err(|e| e.to_string())?;
        Ok(self.engine.truthy(result))
    }
}

#[async_trait]
impl Function for JsonLogic {
    fn name(&self) -> &str {
        "JSONLogic"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let json = match &data {
            Data::Bytes { bytes, content_type } => serde_json::from_slice(bytes)
                .map_err(|e| FunctionError::new(format!("JSONLogic: the {content_type} input is not JSON: {e}")))?,
            other => other.to_json()?,
        };
        let keep = self.matches(&json).map_err(|e| FunctionError::new(format!("JSONLogic: Rule: {e}")))?;
        Ok(keep.then_some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn eval(rule: Json, data: Json) -> bool {
        JsonLogic::new(&rule).unwrap().matches(&data).unwrap()
    }

    fn value(rule: Json, data: Json) -> Json {
        let engine = Engine::new();
        let logic = engine.compile(&rule).unwrap();
        let arena = datalogic_rs::bumpalo::Bump::new();
        let result = engine.evaluate(&logic, &data, &arena).unwrap();
        serde_json::to_value(result).unwrap()
    }

    /// The examples of jsonlogic.com's operations page, with their documented results.
    #[test]
    fn documented_examples() {
        let cases: Vec<(Json, Json, Json)> = vec![
            (json!({"==": [1, 1]}), json!(null), json!(true)),
            (json!({"==": [1, "1"]}), json!(null), json!(true)),
            (json!({"==": [0, false]}), json!(null), json!(true)),
            (json!({"===": [1, 1]}), json!(null), json!(true)),
            (json!({"===": [1, "1"]}), json!(null), json!(false)),
            (json!({"!=": [1, 2]}), json!(null), json!(true)),
            (json!({"!=": [1, 1.0]}), json!(null), json!(false)),
            (json!({"!==": [1, 2]}), json!(null), json!(true)),
            (json!({"!==": [1, "1"]}), json!(null), json!(true)),
            (json!({"!": [true]}), json!(null), json!(false)),
            (json!({"!!": [[]]}), json!(null), json!(false)),
            (json!({"!!": ["0"]}), json!(null), json!(true)),
            (json!({"or": [true, false]}), json!(null), json!(true)),
            (json!({"or": [false, "a"]}), json!(null), json!("a")),
            (json!({"or": [false, 0, "a"]}), json!(null), json!("a")),
            (json!({"and": [true, "", 3]}), json!(null), json!("")),
            (json!({"and": [true, "a", 3]}), json!(null), json!(3)),
            (json!({">": [2, 1]}), json!(null), json!(true)),
            (json!({">=": [1, 1]}), json!(null), json!(true)),
            (json!({"<": [1, 2]}), json!(null), json!(true)),
            (json!({"<=": [1, 1]}), json!(null), json!(true)),
            (json!({"<": [1, 2, 3]}), json!(null), json!(true)),
            (json!({"<": [1, 1, 3]}), json!(null), json!(false)),
            (json!({"<=": [1, 1, 3]}), json!(null), json!(true)),
            (json!({"max": [1, 2, 3]}), json!(null), json!(3)),
            (json!({"min": [1, 2, 3]}), json!(null), json!(1)),
            (json!({"+": [4, 2]}), json!(null), json!(6)),
            (json!({"-": [4, 2]}), json!(null), json!(2)),
            (json!({"*": [4, 2]}), json!(null), json!(8)),
            (json!({"/": [4, 2]}), json!(null), json!(2)),
            (json!({"+": [2, 2, 2, 2, 2]}), json!(null), json!(10)),
            (json!({"*": [2, 2, 2, 2, 2]}), json!(null), json!(32)),
            (json!({"-": [2]}), json!(null), json!(-2)),
            (json!({"+": "2.5"}), json!(null), json!(2.5)),
            (json!({"%": [101, 2]}), json!(null), json!(1)),
            (json!({"var": ["a"]}), json!({"a": 1, "b": 2}), json!(1)),
            (json!({"var": "a"}), json!({"a": 1, "b": 2}), json!(1)),
            (json!({"var": ["z", 26]}), json!({"a": 1, "b": 2}), json!(26)),
            (json!({"var": "champ.name"}), json!({"champ": {"name": "Fezzig", "height": 223}}), json!("Fezzig")),
            (json!({"var": 1}), json!(["zero", "one", "two"]), json!("one")),
            (json!({"missing": ["a", "b"]}), json!({"a": "apple", "c": "carrot"}), json!(["b"])),
            (json!({"missing": ["a", "b"]}), json!({"a": "apple", "b": "banana"}), json!([])),
            (json!({"missing_some": [1, ["a", "b", "c"]]}), json!({"a": "apple"}), json!([])),
            (json!({"missing_some": [2, ["a", "b", "c"]]}), json!({"a": "apple"}), json!(["b", "c"])),
            (json!({"if": [true, "yes", "no"]}), json!(null), json!("yes")),
            (json!({"if": [false, "yes", "no"]}), json!(null), json!("no")),
            (
                json!({"if": [{"<": [{"var": "temp"}, 0]}, "freezing", {"<": [{"var": "temp"}, 100]}, "liquid", "gas"]}),
                json!({"temp": 200}),
                json!("gas"),
            ),
            (json!({"in": ["Spring", "Springfield"]}), json!(null), json!(true)),
            (json!({"in": ["Ringo", ["John", "Paul", "George", "Ringo"]]}), json!(null), json!(true)),
            (json!({"cat": ["I love", " pie"]}), json!(null), json!("I love pie")),
            (json!({"substr": ["jsonlogic", 4]}), json!(null), json!("logic")),
            (json!({"substr": ["jsonlogic", -5]}), json!(null), json!("logic")),
            (json!({"substr": ["jsonlogic", 1, 3]}), json!(null), json!("son")),
            (
                json!({"map": [{"var": "integers"}, {"*": [{"var": ""}, 2]}]}),
                json!({"integers": [1, 2, 3]}),
                json!([2, 4, 6]),
            ),
            (
                json!({"filter": [{"var": "integers"}, {"%": [{"var": ""}, 2]}]}),
                json!({"integers": [1, 2, 3, 4, 5]}),
                json!([1, 3, 5]),
            ),
            (
                json!({"reduce": [{"var": "integers"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}),
                json!({"integers": [1, 2, 3, 4, 5]}),
                json!(15),
            ),
            (json!({"all": [[1, 2, 3], {">": [{"var": ""}, 0]}]}), json!(null), json!(true)),
            (json!({"some": [[-1, 0, 1], {">": [{"var": ""}, 0]}]}), json!(null), json!(true)),
            (json!({"none": [[-3, -2, -1], {">": [{"var": ""}, 0]}]}), json!(null), json!(true)),
            (
                json!({"some": [{"var": "pies"}, {"==": [{"var": "filling"}, "apple"]}]}),
                json!({"pies": [{"filling": "pumpkin"}, {"filling": "apple"}]}),
                json!(true),
            ),
            (json!({"merge": [[1, 2], [3, 4]]}), json!(null), json!([1, 2, 3, 4])),
            (json!({"merge": [1, 2, [3, 4]]}), json!(null), json!([1, 2, 3, 4])),
        ];
        for (rule, data, expected) in cases {
            let got = value(rule.clone(), data);
            let same = match (got.as_f64(), expected.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                _ => got == expected,
            };
            assert!(same, "{rule}: got {got}, expected {expected}");
        }
    }

    fn event() -> Json {
        json!({
            "apiVersion": "v3", "id": "2f4b6a2e-8f0e-4c1b-9a59-1c2d3e4f5a6b", "deviceName": "Random-Integer-Device",
            "profileName": "Random-Integer-Device", "sourceName": "Int16", "origin": 1_700_000_000_000_000_000_i64,
            "readings": [{"resourceName": "Int16", "valueType": "Int16", "value": "42", "origin": 1}],
            "tags": {"site": {"floor": 3}}
        })
    }

    #[test]
    fn rules_on_events_as_edgex_users_write_them() {
        assert!(eval(json!({"==": [{"var": "deviceName"}, "Random-Integer-Device"]}), event()));
        assert!(!eval(json!({"==": [{"var": "deviceName"}, "Other"]}), event()));
        assert!(eval(json!({">": [{"var": "readings.0.value"}, 40]}), event()));
        assert!(eval(json!({"==": [{"var": "tags.site.floor"}, 3]}), event()));
        assert!(eval(json!({"in": [{"var": "sourceName"}, ["Int16", "Int32"]]}), event()));
        let any_high = json!({"some": [{"var": "readings"}, {">": [{"var": "value"}, 100]}]});
        assert!(!eval(any_high, event()));
        // Truthiness of a bare value, and a default for what is absent.
        assert!(eval(json!({"var": "tags.site"}), event()));
        assert!(!eval(json!({"var": ["tags.missing", 0]}), event()));
    }

    #[test]
    fn bad_rules_name_the_parameter() {
        let err = JsonLogic::new(&json!({"frobnicate": [1, 2]})).unwrap_err();
        assert_eq!(err.parameter, "Rule");
        let params = json!({"Rule": "{\"==\": [1,"});
        let err = super::super::from_parameters::<JsonLogicSettings>(params.as_object().unwrap()).unwrap_err();
        assert_eq!(err.parameter, "Rule");
        assert!(err.message.contains("not JSON"), "{err}");
        let params = json!({"Rule": " "});
        let err = super::super::from_parameters::<JsonLogicSettings>(params.as_object().unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "Rule: must not be empty");
    }

    fn arbitrary_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Json::from),
            "[a-z.0-9]{0,6}".prop_map(Json::from),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            let ops = prop_oneof![
                Just("=="),
                Just("==="),
                Just("!="),
                Just("<"),
                Just("<="),
                Just(">"),
                Just("and"),
                Just("or"),
                Just("!"),
                Just("!!"),
                Just("if"),
                Just("var"),
                Just("in"),
                Just("cat"),
                Just("+"),
                Just("-"),
                Just("*"),
                Just("/"),
                Just("%"),
                Just("min"),
                Just("max"),
                Just("missing"),
                Just("some"),
                Just("all"),
                Just("none"),
                Just("filter"),
                Just("map"),
                Just("reduce"),
                Just("substr"),
                Just("merge"),
                Just("missing_some"),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                (ops, inner.clone()).prop_map(|(op, args)| json!({ op: args })),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any rule on any data compiles or is refused, and evaluates or fails: never a panic.
        #[test]
        fn arbitrary_rules_and_data_never_panic(rule in arbitrary_json(), data in arbitrary_json()) {
            if let Ok(logic) = JsonLogic::new(&rule) {
                let _ = logic.matches(&data);
            }
        }
    }
}

//! Property tests of topic and URL templates: what `check_template` accepts at start is what
//! a message's context can fill in later, and no text makes either panic.

use oxedge_app_sdk::secrets::Secrets;
use oxedge_app_sdk::Context;
use oxedge_app_service_configurable::check_template;
use proptest::prelude::*;

fn context() -> Context {
    let ctx = Context::new("c", "p", Secrets::default());
    for (key, value) in [("deviceName", "dev-1"), ("sourceName", "temp"), ("profileName", "Sensor")] {
        ctx.set_value(key, value);
    }
    ctx
}

proptest! {
    #[test]
    fn accepted_templates_fill_in(parts in proptest::collection::vec(
        prop_oneof![
            "[a-z0-9/._-]{0,8}".prop_map(|s| (s, None)),
            proptest::sample::select(vec!["deviceName", "DEVICENAME", "sourceName", "profilename"]).prop_map(|k| (String::new(), Some(k))),
        ],
        0..8,
    )) {
        let mut template = String::new();
        let mut expected = String::new();
        for (literal, key) in &parts {
            template.push_str(literal);
            expected.push_str(literal);
            if let Some(key) = key {
                template.push_str(&format!("{{{key}}}"));
                expected.push_str(match key.to_ascii_lowercase().as_str() {
                    "devicename" => "dev-1",
                    "sourcename" => "temp",
                    _ => "Sensor",
                });
            }
        }
        prop_assert!(check_template(&template).is_ok(), "{template}");
        prop_assert_eq!(context().apply_template(&template).unwrap(), expected);
    }

    #[test]
    fn any_text_is_checked_without_panicking(template in ".{0,60}") {
        if check_template(&template).is_ok() {
            // Accepted: filling it in fails only for a key the message lacks, never on syntax.
            if let Err(e) = context().apply_template(&template) {
                prop_assert!(e.message.contains("no value for"), "{}: {}", template, e.message);
            }
        }
    }

    #[test]
    fn unbalanced_braces_are_refused(prefix in "[a-z/]{0,6}", key in "[a-zA-Z]{1,8}", suffix in "[a-z/]{0,6}") {
        let unclosed = format!("{prefix}{{{key}{suffix}");
        let unopened = format!("{prefix}{key}}}{suffix}");
        prop_assert!(check_template(&unclosed).is_err());
        prop_assert!(check_template(&unopened).is_err());
    }
}

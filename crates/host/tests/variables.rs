//! Every Spin variable a component reads is mapped into it in `spin.toml`.
//! An unmapped variable is not an error at run time: the read fails and the
//! code's default applies, so an operator's setting would be ignored
//! without a word (as `decision_dispatch_actions` was, which left the
//! two-person rule on the default actions only).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Rust sources under `dir`, concatenated.
fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text += &sources(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            text += &std::fs::read_to_string(&path).unwrap();
        }
    }
    text
}

/// The declared variables that `code` names as string literals.
fn named(code: &str, declared: &BTreeSet<String>) -> BTreeSet<String> {
    declared
        .iter()
        .filter(|v| code.contains(&format!("\"{v}\"")))
        .cloned()
        .collect()
}

#[test]
fn every_variable_a_component_reads_is_mapped_into_it() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let declared: BTreeSet<String> = manifest["variables"]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // Read by every API component (those served by `vigil_api::serve`): the
    // composed `platform` and `vigil-api`
    // (outside its decisions module, which only some components use).
    let api = sources(&root().join("crates/api/src"));
    let decisions = sources(&root().join("crates/api/src/decisions"));
    let shared = named(&sources(&root().join("components/platform/src")), &declared)
        .union(&named(&api.replace(&decisions, ""), &declared))
        .cloned()
        .collect::<BTreeSet<_>>();
    let decision_rules = named(&decisions, &declared);

    let mut missing = Vec::new();
    for (name, component) in manifest["component"].as_table().unwrap() {
        let Some(mapped) = component.get("variables").and_then(|v| v.as_table()) else {
            continue;
        };
        let dir = root().join("components").join(name).join("src");
        if !dir.exists() {
            continue;
        }
        let own = sources(&dir);
        let mut needed = named(&own, &declared);
        // Only a component served by vigil-api's router reads its settings
        // (the console serves its files itself).
        if own.contains("vigil_api::serve") {
            needed.extend(shared.iter().cloned());
        }
        if own.contains("vigil_api::decisions") {
            needed.extend(decision_rules.iter().cloned());
        }
        for variable in needed {
            if !mapped.contains_key(&variable) {
                missing.push(format!("{name}: {variable}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "variables read but not mapped in spin.toml ([component.<name>.variables]): {missing:?}"
    );
}

/// Signing keys are the least-privilege boundary: the token key reaches
/// `auth` alone and the evidence key `export` alone.
#[test]
fn each_signing_key_reaches_only_its_component() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    for (key, owner) in [
        ("jwt_signing_key", "auth"),
        ("export_signing_key", "export"),
    ] {
        let holders: Vec<&String> = manifest["component"]
            .as_table()
            .unwrap()
            .iter()
            .filter(|(_, c)| {
                c.get("variables")
                    .and_then(|v| v.as_table())
                    .is_some_and(|v| {
                        v.values()
                            .any(|m| m.as_str() == Some(&format!("{{{{ {key} }}}}")))
                    })
            })
            .map(|(name, _)| name)
            .collect();
        assert_eq!(holders, [owner], "{key} is mapped into {holders:?}");
        assert_eq!(
            manifest["variables"][key]["secret"].as_bool(),
            Some(true),
            "{key} must be secret"
        );
    }
}

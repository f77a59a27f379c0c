//! Signing keys reach only the component that signs with them. (That every
//! variable a component reads is mapped into it is `xtask/tests/variables.rs`,
//! from the components' own lists.)

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

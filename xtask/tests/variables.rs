//! Every Spin variable a component reads is mapped into it in `spin.toml`.
//! An unmapped variable would be refused at run time (a 503 naming it,
//! `vigil_api::settings`), but only once a request needs it: this test
//! finds it before any deployment does. The lists are the components' own
//! (`VARIABLES` in each crate, the ones their settings code reads through),
//! so the code and this test cannot disagree about what is read.

use std::collections::BTreeSet;
use std::path::PathBuf;

use vigil_host::manifest::App;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What each component reads, by its name in `spin.toml`.
fn read_by() -> Vec<(&'static str, Vec<&'static str>)> {
    let flat = |lists: &[&[&'static str]]| lists.iter().flat_map(|l| l.iter().copied()).collect();
    vec![
        // `auth` keeps its own settings; it reads the shared ones too.
        (
            "auth",
            flat(&[vigil_api::settings::VARIABLES, vigil_auth::VARIABLES]),
        ),
        ("decisions", flat(vigil_decisions::VARIABLES)),
        ("threats", flat(vigil_threats::VARIABLES)),
        ("metrics", flat(vigil_metrics::VARIABLES)),
        ("export", flat(vigil_export::VARIABLES)),
        // The console serves its files itself: none of the shared settings.
        ("console", vigil_console::VARIABLES.to_vec()),
    ]
}

#[test]
fn every_variable_a_component_reads_is_mapped_into_it() {
    let app = App::load(&root().join("spin.toml")).expect("spin.toml loads");
    let declared: BTreeSet<&str> = app.manifest.variables.keys().map(String::as_str).collect();
    let mut missing = Vec::new();
    for (component, names) in read_by() {
        let mapped = &app
            .manifest
            .components
            .get(component)
            .unwrap_or_else(|| panic!("spin.toml has no component {component}"))
            .variables;
        for name in names {
            assert!(
                declared.contains(name),
                "{component} reads {name}, which spin.toml does not declare in [variables]"
            );
            if mapped.get(name) != Some(&format!("{{{{ {name} }}}}")) {
                missing.push(format!("{component}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "variables read but not mapped in spin.toml ([component.<name>.variables]): {missing:?}"
    );
}

/// The lists are what the code reads: every declared variable a
/// component's sources name (as a string literal) is on its list, so a new
/// read cannot bypass the list.
#[test]
fn each_list_holds_every_variable_its_code_names() {
    let app = App::load(&root().join("spin.toml")).expect("spin.toml loads");
    let declared: Vec<&str> = app.manifest.variables.keys().map(String::as_str).collect();
    for (component, names) in read_by() {
        let mut code = String::new();
        let dir = root().join("components").join(component).join("src");
        for entry in std::fs::read_dir(&dir).unwrap() {
            code += &std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        }
        for variable in &declared {
            if code.contains(&format!("\"{variable}\"")) {
                assert!(
                    names.contains(variable),
                    "{component} names {variable} but its VARIABLES list does not hold it"
                );
            }
        }
    }
}

/// Spelled out, the mapping the issue found missing: the operator's list
/// of dispatch-type actions reaches both components that decide with it.
#[test]
fn the_dispatch_actions_reach_decisions_and_threats() {
    for (component, names) in read_by() {
        if matches!(component, "decisions" | "threats") {
            assert!(names.contains(&"decision_dispatch_actions"), "{component}");
        }
    }
}

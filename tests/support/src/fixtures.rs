//! The fixtures: real-shaped vendor lists, ticket details, LIT time cases and every default
//! text. The tests read them from the repository's own copy in `tests/fixtures/`, their
//! source of truth, so a clone runs every test on its own. When the contract this project
//! implements is checked out beside the repository (its `shared/spec/fixtures/`), one test
//! checks that the copy still equals it.

use std::path::{Path, PathBuf};

/// Overrides where the contract's fixtures are looked for; empty means "not present".
/// `scripts/test-standalone.sh` sets it to a missing folder to run the tests as a lone clone.
pub const CONTRACT_ENV: &str = "DISPATCH_CONTRACT_FIXTURES";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The directory the fixtures are read from: `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// The contract's copy of the fixtures, when it is present: the folder [`CONTRACT_ENV`] names,
/// else `shared/spec/fixtures/` beside the repository.
pub fn contract_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os(CONTRACT_ENV) {
        Some(dir) if dir.is_empty() => return None,
        Some(dir) => PathBuf::from(dir),
        None => contract_beside(&repo_root()),
    };
    dir.is_dir().then_some(dir)
}

/// Where the contract's fixtures sit when it is checked out beside `root`.
fn contract_beside(root: &Path) -> PathBuf {
    root.parent()
        .unwrap_or(root)
        .join("shared")
        .join("spec")
        .join("fixtures")
}

/// A fixture's text, e.g. `templates.md`.
pub fn text(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()))
}

/// A JSON fixture, e.g. `lit-dispatch-list.json`.
pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&text(name))
        .unwrap_or_else(|error| panic!("fixture {name} is not JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_copy_matches_the_contract_when_it_is_present() {
        let Some(contract) = contract_dir() else {
            eprintln!("the contract's fixtures are not beside the repository: nothing to compare");
            return;
        };
        for entry in std::fs::read_dir(&contract).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let copy = fixtures_dir().join(&name);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&copy).unwrap_or_default(),
                "tests/fixtures/{name} differs from the contract's {}; copy it again",
                path.display()
            );
        }
    }

    #[test]
    fn the_fixtures_are_read_from_the_repository_whatever_is_beside_it() {
        assert_eq!(fixtures_dir(), repo_root().join("tests/fixtures"));
        for name in [
            "templates.md",
            "lit-dispatch-list.json",
            "cts-dispatch-list.json",
            "bruin-ticket-details.json",
            "lit-time-cases.json",
        ] {
            assert!(fixtures_dir().join(name).is_file(), "tests/fixtures/{name}");
        }
    }

    #[test]
    fn the_contract_is_looked_for_beside_the_repository() {
        assert_eq!(
            contract_beside(Path::new("/src/monitor")),
            Path::new("/src/shared/spec/fixtures")
        );
    }
}

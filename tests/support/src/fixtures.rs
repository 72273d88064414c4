//! The SPEC fixtures. They are read from `../shared/spec/fixtures/` beside the checkout when
//! it exists (the contract), else from the copy in `tests/fixtures/`.

use std::path::PathBuf;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The directory the fixtures are read from.
pub fn fixtures_dir() -> PathBuf {
    let shared = repo_root().join("../shared/spec/fixtures");
    if shared.is_dir() {
        shared
    } else {
        repo_root().join("tests/fixtures")
    }
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
    fn the_repository_copy_matches_the_contract() {
        let shared = repo_root().join("../shared/spec/fixtures");
        if !shared.is_dir() {
            return;
        }
        for entry in std::fs::read_dir(&shared).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let copy = repo_root().join("tests/fixtures").join(&name);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&copy).unwrap_or_default(),
                "tests/fixtures/{name} differs from the SPEC fixture; copy it again"
            );
        }
    }
}

//! The repository stands alone: no file points at the contract's folder beside the checkout
//! (only the fixture comparison may look for it), and every relative link of a Markdown file
//! leads to a file inside the repository.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::fixtures::repo_root;

/// The files that may name the contract's folder: the fixture comparison.
const MAY_NAME_THE_CONTRACT: &[&str] = &["tests/support/src/fixtures.rs"];

/// The repository's files, relative to its root: the tracked ones when git can list them,
/// else every file outside `target/` and `.git/`.
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    if let Ok(output) = listed
        && output.status.success()
    {
        return output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .filter(|name| root.join(name).is_file())
            .collect();
    }
    let mut files = Vec::new();
    walk(root, Path::new(""), &mut files);
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let entry = entry.unwrap();
        let relative = dir.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if !matches!(entry.file_name().to_str(), Some("target" | ".git")) {
                walk(root, &relative, files);
            }
        } else {
            files.push(relative);
        }
    }
}

/// The places where a text points outside the repository, as `line: text`.
fn outside_pointers(text: &str) -> Vec<String> {
    let contract = ["..", "shared"].join("/");
    let spec_file = ["SPEC", "md"].join(".");
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(&contract) || line.contains(&spec_file))
        .map(|(number, line)| format!("{}: {}", number + 1, line.trim()))
        .collect()
}

/// The relative targets of a Markdown text's links, `[text](target)`, without anchors.
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or_default().trim();
        let external = target.contains("://") || target.starts_with("mailto:");
        if !target.is_empty() && !external {
            links.push(target.to_owned());
        }
        rest = &rest[end..];
    }
    links
}

/// Whether `target`, relative to the folder `dir` of the repository, stays inside it.
fn stays_inside(dir: &Path, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = dir.components().count() as i64;
    for part in Path::new(target).components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[test]
fn no_file_points_at_the_contract_beside_the_repository() {
    let root = repo_root();
    let mut found = Vec::new();
    for file in repository_files(&root) {
        let name = file.to_string_lossy().replace('\\', "/");
        if MAY_NAME_THE_CONTRACT.contains(&name.as_str()) || name.starts_with("tests/fixtures/") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        found.extend(
            outside_pointers(&text)
                .into_iter()
                .map(|hit| format!("{name}:{hit}")),
        );
    }
    assert!(
        found.is_empty(),
        "these lines point outside the repository; write the behaviour into docs/behaviour.md \
         and point there:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_relative_link_of_a_document_leads_inside_the_repository() {
    let root = repo_root();
    let mut broken = Vec::new();
    for file in repository_files(&root) {
        if file.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&file)).unwrap();
        let dir = file.parent().unwrap_or(Path::new(""));
        for target in relative_links(&text) {
            if !stays_inside(dir, &target) || !root.join(dir).join(&target).exists() {
                broken.push(format!("{}: ({target})", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that leave the repository or lead nowhere:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let contract = ["..", "shared", "spec", &["SPEC", "md"].join(".")].join("/");
    assert_eq!(
        outside_pointers(&format!("intro\nsee `{contract}` §3\n")).len(),
        1
    );
    assert!(outside_pointers("see docs/behaviour.md").is_empty());
    assert_eq!(
        relative_links("[a](docs/x.md#top) [b](https://e.org) [c](../y.md)"),
        ["docs/x.md", "../y.md"]
    );
    assert!(stays_inside(Path::new("docs"), "../README.md"));
    assert!(!stays_inside(Path::new("docs"), "../../elsewhere.md"));
    assert!(!stays_inside(Path::new(""), "/etc/passwd"));
    let files = repository_files(&repo_root());
    assert!(files.iter().any(|file| file == Path::new("README.md")));
}

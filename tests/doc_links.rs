//! Every relative link in README.md and docs/*.md resolves: the file (or
//! directory) exists, and a `#fragment` names a heading of the target page as
//! GitHub renders it. Links with a scheme (https:, mailto:) are not followed.
//! Pure: reads the repository's files only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The pages whose links are checked.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

/// The lines of a page outside fenced code blocks, with their line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| t.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// A line without its inline code spans (`...`): a link shown as code is not a link.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of a line's links: inline `[text](target "title")`, images
/// included, and reference definitions `[name]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_string());
        rest = &after[end..];
    }
    let t = line.trim_start();
    if let Some(close) = t.strip_prefix('[').and_then(|r| r.find("]:")) {
        let target = t[close + 3..].split_whitespace().next().unwrap_or("");
        out.push(target.to_string());
    }
    out
}

/// GitHub's anchor for a heading: the rendered text lowercased, punctuation
/// other than `-` and `_` dropped, each space a `-`.
fn slug(heading: &str) -> String {
    // Links in a heading render as their text.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a page offers: its headings' slugs, a repeated one as
/// `slug-1`, `slug-2`…, as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let mut name = base.clone();
        let mut n = 0;
        while out.contains(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        out.insert(name);
    }
    out
}

/// The broken links of one page, as `page:line: target (why)`.
fn broken_links(page: &Path, text: &str) -> Vec<String> {
    let dir = page.parent().unwrap();
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        for target in link_targets(line) {
            let has_scheme = target
                .split_once(':')
                .is_some_and(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()));
            if has_scheme {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.to_path_buf()
            } else {
                dir.join(path)
            };
            let why = if target.is_empty() {
                Some("empty target".to_string())
            } else if !path.is_empty() && !file.exists() {
                Some(format!("no such file {}", file.display()))
            } else if let Some(fragment) = fragment {
                if file.extension().is_some_and(|e| e == "md") {
                    let headings = if path.is_empty() {
                        anchors(text)
                    } else {
                        anchors(&std::fs::read_to_string(&file).unwrap())
                    };
                    (!headings.contains(fragment))
                        .then(|| format!("no heading #{fragment} in {}", file.display()))
                } else {
                    Some("a #fragment on a file that is not Markdown".to_string())
                }
            } else {
                None
            };
            if let Some(why) = why {
                out.push(format!("{}:{n}: {target} ({why})", page.display()));
            }
        }
    }
    out
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut links = 0;
    for page in pages(root) {
        let text = std::fs::read_to_string(&page).unwrap();
        links += prose(&text)
            .iter()
            .map(|(_, l)| link_targets(l).len())
            .sum::<usize>();
        broken.extend(broken_links(&page, &text));
    }
    assert!(
        links > 20,
        "only {links} links found: is the parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Test runs: guards and stale runs"),
        "test-runs-guards-and-stale-runs"
    );
    assert_eq!(slug("Picking by hand (`-i`)"), "picking-by-hand--i");
    assert_eq!(
        slug("Crash safety: the guard and `--stale-runs`"),
        "crash-safety-the-guard-and---stale-runs"
    );
    assert_eq!(slug("See [Safety](safety.md) too"), "see-safety-too");
    let a = anchors("# Usage\n```\n# not a heading\n```\n## Usage\n#nospace\n");
    assert_eq!(
        a,
        ["usage", "usage-1"].map(String::from).into_iter().collect()
    );
}

#[test]
fn broken_links_are_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.md"), "# Other page\n## A part\n").unwrap();
    let page = dir.path().join("page.md");
    let text = "# Page\n\
        [ok](other.md), [ok](other.md#a-part), [ok](#page), [web](https://example.invalid/x)\n\
        `[code](missing.md)`\n\
        ```\n[fenced](missing.md)\n```\n\
        [gone](missing.md) and [bad anchor](other.md#no-such-part)\n\
        [self](#nowhere)\n\
        [ref]: ./missing-too.md\n";
    let found = broken_links(&page, text);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(
        found[0].contains(":7: missing.md (no such file"),
        "{found:#?}"
    );
    assert!(
        found[1].contains(":7: other.md#no-such-part (no heading"),
        "{found:#?}"
    );
    assert!(found[2].contains(":8: #nowhere (no heading"), "{found:#?}");
    assert!(
        found[3].contains(":9: ./missing-too.md (no such file"),
        "{found:#?}"
    );
}

//! `GET /images/json` and its filters (reference, dangling, label, before, since, until),
//! with Docker's matching rules: a reference pattern is a path-style glob matched against
//! the familiar name with and without its tag, and narrows the names shown to those that
//! matched.

use std::collections::BTreeMap;

use gorae_image::Store;
use serde_json::Value;

use super::details::{load_all, load_one, Image};
use super::time::{now_unix, parse_filter_time};
use crate::engine::Filters;
use crate::error::{Error, Result};

/// The filters of one list call, checked.
#[derive(Default)]
struct ListFilter {
    references: Vec<String>,
    dangling: Option<bool>,
    labels: Vec<String>,
    before: Option<i64>,
    since: Option<i64>,
    until: Option<i64>,
}

pub fn list(store: &Store, filters: &Filters, users: &BTreeMap<String, i64>) -> Result<Vec<Value>> {
    let filter = ListFilter::parse(store, filters)?;
    let mut images = load_all(store)?;
    images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let mut out = Vec::new();
    for image in &images {
        let Some((tags, digests)) = filter.names_if_shown(image) else {
            continue;
        };
        let containers = users.get(image.id.hex()).copied().unwrap_or(-1);
        out.push(image.summary(tags, digests, containers));
    }
    Ok(out)
}

impl ListFilter {
    fn parse(store: &Store, filters: &Filters) -> Result<ListFilter> {
        let mut f = ListFilter::default();
        for (key, values) in filters {
            match key.as_str() {
                "reference" => f.references.clone_from(values),
                "label" => f.labels.clone_from(values),
                "dangling" => f.dangling = Some(parse_bool_filter(key, values)?),
                "before" | "since" => {
                    let times = values
                        .iter()
                        .map(|v| load_one(store, v).map(|i| i.created))
                        .collect::<Result<Vec<_>>>()?;
                    if key == "before" {
                        f.before = times.into_iter().min();
                    } else {
                        f.since = times.into_iter().max();
                    }
                }
                "until" => f.until = Some(until(values)?),
                _ => return Err(Error::InvalidParameter(format!("invalid filter '{key}'"))),
            }
        }
        Ok(f)
    }

    /// The tags and digests to show for `image`, or `None` if it is filtered out.
    fn names_if_shown(&self, image: &Image) -> Option<(Vec<String>, Vec<String>)> {
        let keep = self
            .dangling
            .is_none_or(|d| d == image.repo_tags().is_empty())
            && self.before.is_none_or(|t| image.created < t)
            && self.since.is_none_or(|t| image.created > t)
            && self.until.is_none_or(|t| image.created < t)
            && self.labels.iter().all(|l| label_matches(image, l));
        if !keep {
            return None;
        }
        let (mut tags, mut digests) = (image.repo_tags(), image.repo_digests());
        if self.references.is_empty() {
            return Some((tags, digests));
        }
        let matches = |name: &String| {
            let bare = name.split('@').next().unwrap_or(name);
            let repo = strip_tag(bare);
            self.references
                .iter()
                .any(|p| glob_match(p, bare) || glob_match(p, repo))
        };
        tags.retain(matches);
        digests.retain(matches);
        (!tags.is_empty() || !digests.is_empty()).then_some((tags, digests))
    }
}

pub fn parse_bool_filter(key: &str, values: &[String]) -> Result<bool> {
    let mut result = None;
    for v in values {
        let b = match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(Error::InvalidParameter(format!(
                    "Invalid filter '{key}={v}'"
                )))
            }
        };
        if result.is_some_and(|r| r != b) {
            return Err(Error::InvalidParameter(format!(
                "Invalid filter '{key}': conflicting values"
            )));
        }
        result = Some(b);
    }
    Ok(result.unwrap_or(true))
}

/// The earliest of the `until` values.
pub fn until(values: &[String]) -> Result<i64> {
    let now = now_unix();
    values
        .iter()
        .map(|v| {
            parse_filter_time(v, now).ok_or_else(|| {
                Error::InvalidParameter(format!("invalid filter 'until={v}': not a time"))
            })
        })
        .try_fold(i64::MAX, |min, t| Ok(min.min(t?)))
}

/// `key` (the label is set) or `key=value`.
pub fn label_matches(image: &Image, filter: &str) -> bool {
    let labels = image.labels();
    match filter.split_once('=') {
        Some((k, v)) => labels.and_then(|l| l.get(k)).is_some_and(|x| x == v),
        None => labels.is_some_and(|l| l.contains_key(filter)),
    }
}

/// `repo:tag` → `repo`, leaving a registry's `:port` alone.
fn strip_tag(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

/// Go's `path.Match`: `*` is any run of non-`/` characters, `?` one of them, `[...]` a
/// class (`[^...]` negated, `a-z` ranges), `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&i| i == 0 || n[i - 1] != '/')
            .any(|i| match_from(&p[1..], &n[i..])),
        Some('?') => n.first().is_some_and(|&c| c != '/') && match_from(&p[1..], &n[1..]),
        Some('[') => match (n.first(), class(&p[1..])) {
            (Some(&c), Some((set, negated, rest))) if c != '/' => {
                in_class(&set, c) != negated && match_from(rest, &n[1..])
            }
            _ => false,
        },
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && match_from(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && match_from(&p[1..], &n[1..]),
    }
}

/// A `[...]` class: its (lo, hi) ranges, whether it is negated, and what follows its `]`.
type Class<'a> = (Vec<(char, char)>, bool, &'a [char]);

/// The class after a `[`.
fn class(p: &[char]) -> Option<Class<'_>> {
    let (negated, mut i) = if p.first() == Some(&'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut set = Vec::new();
    while i < p.len() && (p[i] != ']' || set.is_empty()) {
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            set.push((lo, p[i + 2]));
            i += 3;
        } else {
            set.push((lo, lo));
            i += 1;
        }
    }
    (i < p.len()).then(|| (set, negated, &p[i + 1..]))
}

fn in_class(set: &[(char, char)], c: char) -> bool {
    set.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// The images part of `/system/df`: every image with the containers using it and the
/// bytes it shares with others (layers more than one image has), and the store's size.
pub fn disk_usage(store: &Store, in_use: &[super::Use]) -> Result<super::DiskUsage> {
    let images = load_all(store)?;
    let mut layer_users: BTreeMap<&gorae_image::Digest, usize> = BTreeMap::new();
    for image in &images {
        for layer in &image.manifest.layers {
            *layer_users.entry(&layer.digest).or_default() += 1;
        }
    }
    let mut summaries = Vec::new();
    for image in &images {
        let containers = in_use
            .iter()
            .filter(|u| u.image_hex == image.id.hex())
            .count();
        let shared: u64 = image
            .manifest
            .layers
            .iter()
            .filter(|l| layer_users.get(&l.digest).is_some_and(|n| *n > 1))
            .map(|l| l.size)
            .sum();
        let mut summary = image.summary(image.repo_tags(), image.repo_digests(), containers as i64);
        summary["SharedSize"] = shared.into();
        summaries.push(summary);
    }
    let mut layers_size = 0;
    for digest in store.content.list()? {
        layers_size += store.content.size(&digest).unwrap_or(0);
    }
    Ok(super::DiskUsage {
        layers_size,
        images: summaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("busybox", "busybox"));
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(!glob_match("*", "127.0.0.1:5000/x"));
        assert!(glob_match("*/*", "127.0.0.1:5000/x"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[^a-c]usybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
    }

    #[test]
    fn tags_are_stripped_but_ports_kept() {
        assert_eq!(strip_tag("busybox:1"), "busybox");
        assert_eq!(strip_tag("127.0.0.1:5000/x:1"), "127.0.0.1:5000/x");
        assert_eq!(strip_tag("127.0.0.1:5000/x"), "127.0.0.1:5000/x");
    }

    #[test]
    fn bool_filters() {
        assert!(parse_bool_filter("dangling", &["true".into()]).unwrap());
        assert!(!parse_bool_filter("dangling", &["0".into()]).unwrap());
        assert!(parse_bool_filter("dangling", &["maybe".into()]).is_err());
    }
}

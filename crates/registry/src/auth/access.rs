//! The access file: who may pull, push and delete where, and who may list the catalog.
//!
//! ```toml
//! # Rules add up: a request is allowed when any rule allows it.
//! [[rule]]
//! repositories = ["base", "team/**"]
//! users = ["alice", "bob"]          # "*" is anyone who logged in
//! actions = ["pull", "push", "delete"]
//!
//! [[rule]]
//! repositories = ["public/**"]
//! anonymous = true                  # everyone, logged in or not
//! actions = ["pull"]
//!
//! [[rule]]
//! users = ["admin"]
//! catalog = true                    # may list /v2/_catalog
//! ```
//!
//! Repository patterns match whole names. `*` matches any run of characters inside one path
//! component (`team/*` is `team/app` but not `team/app/db`), `**` matches across components
//! (`team/**` is everything under `team/`, at any depth, but not `team` itself; `**` alone is
//! every repository). Everything else matches itself.
//!
//! A rule applies to the users it lists; `anonymous = true` makes it apply to every client,
//! with or without credentials (a user who logs in never has fewer rights than anonymous).
//! Every rule must name whom it is for and grant something, and unknown keys are errors, so
//! a typo cannot silently grant or withhold access. An empty file allows nothing.
//!
//! Without an access file, every authenticated user may do everything (catalog included) and
//! anonymous clients nothing. The catalog lists every repository name: it is not filtered per
//! user, so grant it only to those who may see all names.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::Action;
use crate::config::one_line;
use crate::error::{Error, IoContext, Result};

#[derive(Debug)]
pub(super) struct AccessRules {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    repositories: Vec<Glob>,
    users: Users,
    actions: BTreeSet<Action>,
    catalog: bool,
}

#[derive(Debug)]
enum Users {
    Anonymous,
    AnyAuthenticated,
    Named(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    #[serde(default)]
    rule: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    catalog: bool,
}

impl AccessRules {
    pub(super) fn load(path: &Path) -> Result<AccessRules> {
        let text = std::fs::read_to_string(path).at(path)?;
        AccessRules::parse(&text).map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// The error is one line naming the rule (by number, from 1) or the TOML position.
    pub(super) fn parse(text: &str) -> std::result::Result<AccessRules, String> {
        let file: AccessFile = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let rules = file
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, rule)| Rule::new(rule).map_err(|why| format!("rule {}: {why}", i + 1)))
            .collect::<std::result::Result<_, _>>()?;
        Ok(AccessRules { rules })
    }

    /// What `user` (None: anonymous) may do in repository `name`.
    pub(super) fn actions(&self, user: Option<&str>, name: &str) -> BTreeSet<Action> {
        self.rules
            .iter()
            .filter(|rule| {
                rule.applies_to(user) && rule.repositories.iter().any(|g| g.matches(name))
            })
            .flat_map(|rule| rule.actions.iter().copied())
            .collect()
    }

    pub(super) fn catalog(&self, user: Option<&str>) -> bool {
        self.rules.iter().any(|r| r.catalog && r.applies_to(user))
    }
}

impl Rule {
    fn new(file: RuleFile) -> std::result::Result<Rule, String> {
        let users = match (file.anonymous, file.users.as_slice()) {
            (true, _) => Users::Anonymous,
            (false, []) => return Err("names no users and is not anonymous".into()),
            (false, names) if names.iter().any(|n| n == "*") => Users::AnyAuthenticated,
            (false, names) => Users::Named(names.to_vec()),
        };
        if file.users.iter().any(String::is_empty) {
            return Err("empty user name".into());
        }
        let actions = file
            .actions
            .iter()
            .map(|a| {
                Action::parse(a)
                    .ok_or_else(|| format!("unknown action {a:?} (pull, push or delete)"))
            })
            .collect::<std::result::Result<BTreeSet<_>, _>>()?;
        let repositories = file
            .repositories
            .iter()
            .map(|p| Glob::new(p))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if repositories.is_empty() != actions.is_empty() {
            return Err("repositories and actions go together: give both or neither".into());
        }
        if repositories.is_empty() && !file.catalog {
            return Err("grants nothing (no repositories with actions, no catalog)".into());
        }
        Ok(Rule {
            repositories,
            users,
            actions,
            catalog: file.catalog,
        })
    }

    fn applies_to(&self, user: Option<&str>) -> bool {
        match (&self.users, user) {
            (Users::Anonymous, _) => true,
            (_, None) => false,
            (Users::AnyAuthenticated, Some(_)) => true,
            (Users::Named(names), Some(user)) => names.iter().any(|n| n == user),
        }
    }
}

/// A repository pattern (see the module doc).
#[derive(Debug)]
struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Byte(u8),
    /// `*`: any run without `/`.
    Star,
    /// `**`: any run.
    DoubleStar,
}

impl Glob {
    fn new(pattern: &str) -> std::result::Result<Glob, String> {
        let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-/*".contains(&c);
        if pattern.is_empty() || !pattern.bytes().all(allowed) {
            return Err(format!(
                "repository pattern {pattern:?}: use lowercase letters, digits, . _ - / and *"
            ));
        }
        let bytes = pattern.as_bytes();
        let mut tokens = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"**") {
                tokens.push(Token::DoubleStar);
                i += 2;
            } else {
                tokens.push(match bytes[i] {
                    b'*' => Token::Star,
                    c => Token::Byte(c),
                });
                i += 1;
            }
        }
        Ok(Glob { tokens })
    }

    /// Dynamic programming over name positions, so no pattern can make matching slow.
    fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        let mut reach = vec![false; name.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; name.len() + 1];
            for j in 0..=name.len() {
                next[j] = match token {
                    Token::Byte(c) => j > 0 && reach[j - 1] && name[j - 1] == *c,
                    Token::Star => reach[j] || (j > 0 && next[j - 1] && name[j - 1] != b'/'),
                    Token::DoubleStar => reach[j] || (j > 0 && next[j - 1]),
                };
            }
            reach = next;
        }
        reach[name.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn set(actions: &[Action]) -> BTreeSet<Action> {
        actions.iter().copied().collect()
    }

    #[test]
    fn globs_match_within_and_across_components() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("team/*").matches("team/app"));
        assert!(!g("team/*").matches("team/app/db"));
        assert!(!g("team/*").matches("team"));
        assert!(g("team/**").matches("team/app/db"));
        assert!(!g("team/**").matches("teams/app"));
        assert!(g("**").matches("a/b/c"));
        assert!(g("*").matches("a") && !g("*").matches("a/b"));
        assert!(g("base").matches("base") && !g("base").matches("base2"));
        assert!(g("*/app-*").matches("x/app-1") && !g("*/app-*").matches("x/y/app-1"));
        assert!(g("a/**/z").matches("a/b/c/z") && !g("a/**/z").matches("a/z/b"));
        let many = Glob::new(&"*a".repeat(40)).unwrap();
        assert!(!many.matches(&"a".repeat(39)));
    }

    #[test]
    fn rules_add_up() {
        let rules = AccessRules::parse(
            r#"
            [[rule]]
            repositories = ["team/**", "base"]
            users = ["alice"]
            actions = ["pull", "push"]
            [[rule]]
            repositories = ["team/app"]
            users = ["alice", "bob"]
            actions = ["delete"]
            [[rule]]
            repositories = ["public/*"]
            anonymous = true
            actions = ["pull"]
            [[rule]]
            repositories = ["**"]
            users = ["*"]
            actions = ["pull"]
            [[rule]]
            users = ["admin"]
            catalog = true
            "#,
        )
        .unwrap();
        assert_eq!(
            rules.actions(Some("alice"), "team/app"),
            set(&[Pull, Push, Delete])
        );
        assert_eq!(rules.actions(Some("alice"), "base"), set(&[Pull, Push]));
        assert_eq!(rules.actions(Some("bob"), "team/app"), set(&[Pull, Delete]));
        assert_eq!(rules.actions(Some("carol"), "other"), set(&[Pull]));
        assert_eq!(rules.actions(None, "public/x"), set(&[Pull]));
        assert_eq!(rules.actions(None, "team/app"), set(&[]));
        assert!(rules.catalog(Some("admin")));
        assert!(!rules.catalog(Some("alice")) && !rules.catalog(None));
    }

    #[test]
    fn an_empty_file_allows_nothing() {
        let rules = AccessRules::parse("").unwrap();
        assert!(rules.actions(Some("alice"), "a").is_empty());
        assert!(!rules.catalog(Some("alice")));
    }

    #[test]
    fn mistakes_are_errors_naming_the_rule() {
        for (text, want) in [
            (
                "[[rule]]\nrepositories=[\"a\"]\nactions=[\"pull\"]\n",
                "rule 1: names no users",
            ),
            (
                "[[rule]]\nusers=[\"a\"]\nrepositories=[\"a\"]\nactions=[\"pul\"]\n",
                "\"pul\"",
            ),
            (
                "[[rule]]\nusers=[\"a\"]\nrepositories=[\"a\"]\n",
                "give both",
            ),
            ("[[rule]]\nusers=[\"a\"]\n", "grants nothing"),
            (
                "[[rule]]\nusers=[\"a\"]\nrepositories=[\"A\"]\nactions=[\"pull\"]\n",
                "\"A\"",
            ),
            ("[[rule]]\nuser=[\"a\"]\n", "user"),
            ("[[rules]]\n", "rules"),
        ] {
            let e = AccessRules::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.toml");
        std::fs::write(&path, "[[rule]]\ncatalog = true\n").unwrap();
        let e = AccessRules::load(&path).unwrap_err().to_string();
        assert!(e.contains("access.toml") && e.contains("rule 1"), "{e}");
        let e = AccessRules::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}

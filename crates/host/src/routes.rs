//! Route matching for `[[trigger.http]]`, following Spin's rules.
//!
//! Spin (crates/routes/src/lib.rs at v4.0.2) delegates the actual matching to
//! the `routefinder` crate; we use the same crate and version so precedence
//! (exact beats wildcard, longest prefix wins, named `:segments`) is identical
//! rather than re-derived. What this module adds on top is Spin's own
//! normalisation of route strings and how it reports the match to the guest.

use std::collections::HashMap;

use anyhow::{Result, anyhow};

/// A route as written in `spin.toml`: a pattern string, or `{ private = true }`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum RouteConfig {
    Route(String),
    Private(PrivateEndpoint),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateEndpoint {
    pub private: bool,
}

#[derive(Clone, Debug)]
struct Handler {
    component: String,
    /// The route with the (always "/") base applied and one trailing slash removed.
    based_route: String,
    /// The route exactly as written in the manifest.
    raw_route: String,
}

/// Maps request paths to component ids.
#[derive(Debug)]
pub struct Router {
    inner: routefinder::Router<Handler>,
    /// Routes that were shadowed by a later duplicate: (route, replaced, effective).
    pub duplicates: Vec<(String, String, String)>,
}

/// The outcome of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// `spin-matched-route`: the based route as written (wildcard suffix kept).
    pub based_route: String,
    /// `spin-raw-component-route`: the route exactly as in the manifest.
    pub raw_route: String,
    /// `spin-component-route`: the raw route without a trailing `/...`.
    pub raw_route_or_prefix: String,
    /// `spin-path-info`: what the trailing wildcard captured.
    pub path_info: String,
    /// `spin-path-match-<name>` for each `:name` segment.
    pub named_wildcards: Vec<(String, String)>,
}

impl Router {
    /// Builds a router from `(component id, route)` pairs in manifest order.
    pub fn build<'a>(routes: impl IntoIterator<Item = (&'a str, &'a RouteConfig)>) -> Result<Self> {
        // Later duplicates replace earlier ones but keep the first one's position,
        // like Spin's IndexMap keyed by the raw route string.
        let mut ordered: Vec<Handler> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut duplicates = Vec::new();
        for (component, route) in routes {
            let raw_route = match route {
                RouteConfig::Route(r) => r.clone(),
                RouteConfig::Private(p) if p.private => continue,
                RouteConfig::Private(_) => {
                    return Err(anyhow!(
                        "route must be a string pattern or '{{ private = true }}': '{component}' has {{ private = false }}"
                    ));
                }
            };
            let handler = Handler {
                component: component.to_string(),
                based_route: sanitize_with_base("/", &raw_route),
                raw_route: raw_route.clone(),
            };
            if let Some(&i) = index.get(&raw_route) {
                let replaced = std::mem::replace(&mut ordered[i], handler);
                duplicates.push((
                    replaced.based_route,
                    replaced.component,
                    component.to_string(),
                ));
            } else {
                index.insert(raw_route, ordered.len());
                ordered.push(handler);
            }
        }

        let mut inner = routefinder::Router::new();
        for handler in ordered {
            let spec = routefinder_spec(&handler.based_route);
            inner.add(spec.as_str(), handler.clone()).map_err(|e| {
                anyhow!(
                    "Error parsing route {} associated with component {}: {e}",
                    handler.based_route,
                    handler.component
                )
            })?;
        }
        Ok(Self { inner, duplicates })
    }

    /// Routes a request path (the raw, still percent-encoded path without the query).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let m = self.inner.best_match(path)?;
        let handler = m.handler();
        let captures = m.captures();
        // Spin keeps the trailing slash in the captured wildcard although
        // routefinder drops it (crates/routes/src/lib.rs, `trailing_wildcard`).
        let path_info = match captures.wildcard() {
            None => String::new(),
            Some(s) => match (s.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{s}"),
                (false, true) => format!("/{s}/"),
            },
        };
        let named_wildcards = captures
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(RouteMatch {
            component: handler.component.clone(),
            based_route: handler.based_route.clone(),
            raw_route: handler.raw_route.clone(),
            raw_route_or_prefix: handler
                .raw_route
                .strip_suffix("/...")
                .unwrap_or(&handler.raw_route)
                .to_string(),
            path_info,
            named_wildcards,
        })
    }

    /// The routes for the start-up banner: (component, route for display, wildcard?).
    pub fn routes(&self) -> Vec<(String, String, bool)> {
        self.inner
            .iter()
            .map(|(_, h)| {
                let (path, wild) = match h.based_route.strip_suffix("/...") {
                    Some(p) => (p, true),
                    None => match h.based_route.strip_suffix("/*") {
                        Some(p) => (p, true),
                        None => (h.based_route.as_str(), false),
                    },
                };
                let path = if path.is_empty() { "/" } else { path };
                (h.component.clone(), path.to_string(), wild)
            })
            .collect()
    }
}

/// Spin's `/...` suffix becomes routefinder's `/*`; `/*` is passed through as is.
fn routefinder_spec(based_route: &str) -> String {
    match based_route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None => based_route.to_string(),
    }
}

/// Prefixes the base and strips ONE trailing slash from each part. So route
/// "/" becomes "" and that empty string is what Spin reports as
/// `spin-matched-route` (crates/routes/src/lib.rs, `sanitize_with_base`).
fn sanitize_with_base(base: &str, path: &str) -> String {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_string();
    format!("{}{}", strip(base), strip(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let configs: Vec<(String, RouteConfig)> = routes
            .iter()
            .map(|(c, r)| (c.to_string(), RouteConfig::Route(r.to_string())))
            .collect();
        Router::build(configs.iter().map(|(c, r)| (c.as_str(), r))).unwrap()
    }

    fn comp(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.component)
    }

    #[test]
    fn exact_routes() {
        let r = router(&[("foo", "/foo"), ("foobar", "/foo/bar")]);
        assert_eq!(comp(&r, "/foo").as_deref(), Some("foo"));
        assert_eq!(comp(&r, "/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(comp(&r, "/nope"), None);
        // routefinder ignores one trailing slash on exact routes
        assert_eq!(comp(&r, "/foo/").as_deref(), Some("foo"));
    }

    #[test]
    fn wildcard_catches_everything() {
        let r = router(&[("all", "/...")]);
        for p in ["/foo/bar", "/abc/", "/"] {
            assert_eq!(comp(&r, p).as_deref(), Some("all"), "{p}");
        }
        let m = r.route("/1/2/3").unwrap();
        assert_eq!(m.path_info, "/1/2/3");
        assert_eq!(m.based_route, "/...");
        assert_eq!(m.raw_route_or_prefix, "");
    }

    #[test]
    fn longest_prefix_wins_regardless_of_order() {
        for routes in [
            [
                ("one", "/one/..."),
                ("two", "/one/two/..."),
                ("three", "/one/two/three/..."),
            ],
            [
                ("three", "/one/two/three/..."),
                ("two", "/one/two/..."),
                ("one", "/one/..."),
            ],
        ] {
            let r = router(&routes);
            assert_eq!(comp(&r, "/one/two/three/four").as_deref(), Some("three"));
            assert_eq!(comp(&r, "/one/two/x").as_deref(), Some("two"));
            assert_eq!(comp(&r, "/one").as_deref(), Some("one"));
        }
    }

    #[test]
    fn exact_beats_wildcard() {
        let r = router(&[("wild", "/..."), ("exact", "/one")]);
        assert_eq!(comp(&r, "/one").as_deref(), Some("exact"));
        assert_eq!(comp(&r, "/one/x").as_deref(), Some("wild"));
    }

    #[test]
    fn trailing_wildcard_keeps_trailing_slash() {
        let r = router(&[("c", "/test/...")]);
        let pi = |p: &str| r.route(p).unwrap().path_info;
        assert_eq!(pi("/test"), "");
        assert_eq!(pi("/test/"), "/");
        assert_eq!(pi("/test/hello"), "/hello");
        assert_eq!(pi("/test/hello/"), "/hello/");
        assert_eq!(r.route("/testing"), None);
    }

    #[test]
    fn named_segments() {
        let r = router(&[("c", "/users/:id/...")]);
        let m = r.route("/users/42/posts").unwrap();
        assert_eq!(
            m.named_wildcards,
            vec![("id".to_string(), "42".to_string())]
        );
        assert_eq!(m.path_info, "/posts");
    }

    #[test]
    fn root_route_reports_empty_matched_route() {
        let r = router(&[("root", "/")]);
        let m = r.route("/").unwrap();
        assert_eq!(m.based_route, "");
        assert_eq!(m.raw_route, "/");
        assert_eq!(m.raw_route_or_prefix, "/");
    }

    #[test]
    fn percent_encoded_paths_match_literally() {
        let r = router(&[("enc", "/a%20b"), ("wild", "/files/...")]);
        assert_eq!(comp(&r, "/a%20b").as_deref(), Some("enc"));
        assert_eq!(comp(&r, "/a b").as_deref(), None);
        assert_eq!(r.route("/files/x%2Fy").unwrap().path_info, "/x%2Fy");
    }

    #[test]
    fn private_routes_are_not_routable_and_false_is_an_error() {
        let configs = [
            ("pub".to_string(), RouteConfig::Route("/p".into())),
            (
                "priv".to_string(),
                RouteConfig::Private(PrivateEndpoint { private: true }),
            ),
        ];
        let r = Router::build(configs.iter().map(|(c, r)| (c.as_str(), r))).unwrap();
        assert_eq!(r.routes().len(), 1);
        let bad = [(
            "bad".to_string(),
            RouteConfig::Private(PrivateEndpoint { private: false }),
        )];
        let err = Router::build(bad.iter().map(|(c, r)| (c.as_str(), r))).unwrap_err();
        assert!(err.to_string().contains("bad"));
    }

    #[test]
    fn duplicate_route_last_one_wins() {
        let r = router(&[("first", "/foo"), ("second", "/foo")]);
        assert_eq!(comp(&r, "/foo").as_deref(), Some("second"));
        assert_eq!(r.duplicates.len(), 1);
    }
}

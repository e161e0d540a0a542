//! ARM resource ids: parsed into segments, compared case-insensitively by segment, and turned into URLs
//! with every segment percent-encoded. Nothing else in the product touches raw ARM paths.
//!
//! Azure allows non-ASCII letters in resource-group and factory names, and ARM compares ids without case;
//! names that come from definitions (a `connectVia.referenceName`, a linked service's name) are data, so a
//! URL built from them must not be able to leave the resource it was built for.

use url::Url;

/// Why a text is not a usable resource id or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not an ARM resource id: it must start with `/` and have no empty segment")]
    Malformed(String),
    #[error("`{0}` is not a usable name: it is empty, `.` or `..`, or holds a control character")]
    BadName(String),
    #[error("the URL for `{0}` would leave the resource it was built for")]
    Escapes(String),
}

/// An ARM resource id, as its segments. Equality and ordering ignore case.
#[derive(Debug, Clone)]
pub struct ResourceId {
    segments: Vec<String>,
}

/// Whether a segment from data is acceptable as one path segment.
fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && !segment.chars().any(char::is_control)
}

/// Text shortened for an error message (by characters, never inside one).
fn shown(text: &str) -> String {
    text.chars().take(200).collect()
}

impl ResourceId {
    /// Parses `/subscriptions/{s}/…`. A trailing `/` is allowed; empty, `.` or `..` segments, `?` and `#` are not.
    pub fn parse(text: &str) -> Result<ResourceId, IdError> {
        let trimmed = text.trim();
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let Some(rest) = trimmed.strip_prefix('/') else {
            return Err(IdError::Malformed(shown(text)));
        };
        let segments: Vec<String> = rest.split('/').map(str::to_string).collect();
        if segments
            .iter()
            .any(|s| !valid_segment(s) || s.contains(['?', '#']))
        {
            return Err(IdError::Malformed(shown(text)));
        }
        Ok(ResourceId { segments })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The id with `collection/name` appended; `name` is data and stays one segment.
    pub fn child(&self, collection: &str, name: &str) -> Result<ResourceId, IdError> {
        if !valid_segment(name) {
            return Err(IdError::BadName(shown(name)));
        }
        let mut segments = self.segments.clone();
        segments.push(collection.to_string());
        segments.push(name.to_string());
        Ok(ResourceId { segments })
    }

    /// The id with more fixed segments appended (an action such as `getStatus`, or a collection).
    pub fn join(&self, fixed: &[&str]) -> ResourceId {
        let mut segments = self.segments.clone();
        segments.extend(fixed.iter().map(|s| s.to_string()));
        ResourceId { segments }
    }

    /// The value after a named segment (case-insensitive), e.g. the subscription id.
    pub fn after(&self, name: &str) -> Option<&str> {
        self.segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .and_then(|i| self.segments.get(i + 1))
            .map(String::as_str)
    }

    pub fn subscription(&self) -> Option<&str> {
        (self.segments.first()?.eq_ignore_ascii_case("subscriptions"))
            .then(|| self.segments.get(1).map(String::as_str))
            .flatten()
    }

    /// The factory this id is or lies under: `/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f`.
    pub fn factory(&self) -> Option<ResourceId> {
        let s = &self.segments;
        (s.len() >= 8
            && s[0].eq_ignore_ascii_case("subscriptions")
            && s[2].eq_ignore_ascii_case("resourceGroups")
            && s[4].eq_ignore_ascii_case("providers")
            && s[5].eq_ignore_ascii_case("Microsoft.DataFactory")
            && s[6].eq_ignore_ascii_case("factories"))
        .then(|| ResourceId {
            segments: s[..8].to_vec(),
        })
    }

    /// Whether this id is exactly one factory.
    pub fn is_factory(&self) -> bool {
        self.segments.len() == 8 && self.factory().is_some()
    }

    /// Whether `other` is this id or lies below it, comparing segments without case.
    pub fn contains(&self, other: &ResourceId) -> bool {
        other.segments.len() >= self.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| same_segment(a, b))
    }

    /// A lower-cased key that identifies the id regardless of case, for maps and sorting.
    pub fn key(&self) -> String {
        self.to_string().to_lowercase()
    }

    /// The URL of this id on `endpoint`, with every segment percent-encoded and `api-version` set.
    /// The URL is checked to hold exactly this id's segments, so no name can climb out of it.
    pub fn url(&self, endpoint: &Url, api_version: &str) -> Result<Url, IdError> {
        let mut url = endpoint.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| IdError::Escapes(shown(&self.to_string())))?;
            path.pop_if_empty();
            for segment in &self.segments {
                path.push(segment);
            }
        }
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        let base = endpoint
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).count())
            .unwrap_or(0);
        let built: Vec<String> = url
            .path_segments()
            .map(|s| s.skip(base).map(percent_encoding_decode).collect())
            .unwrap_or_default();
        if built != self.segments {
            return Err(IdError::Escapes(shown(&self.to_string())));
        }
        Ok(url)
    }
}

/// Percent-decodes one URL path segment (as `url` encoded it).
fn percent_encoding_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// ARM compares names without case, in any script.
fn same_segment(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.segments.len() == other.segments.len() && self.contains(other)
    }
}
impl Eq for ResourceId {}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

/// Whether two URLs have the same origin: scheme, host and effective port (`:443` on https is the default).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_lowercase) == b.host_str().map(str::to_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A `nextLink` to follow: only on the configured endpoint's origin, since the bearer token goes with it.
pub fn next_link(endpoint: &Url, link: &str) -> Option<Url> {
    let url = Url::parse(link.trim()).ok()?;
    (same_origin(endpoint, &url) && url.username().is_empty() && url.password().is_none())
        .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const F: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f1";

    fn endpoint() -> Url {
        Url::parse("https://management.azure.com").unwrap()
    }

    #[test]
    fn ids_compare_by_segments_without_case() {
        let f = ResourceId::parse(F).unwrap();
        let upper = ResourceId::parse(&F.to_uppercase()).unwrap();
        assert_eq!(f, upper);
        assert!(f.is_factory());
        let rg = ResourceId::parse("/subscriptions/S1/resourceGroups/RG").unwrap();
        assert!(rg.contains(&f));
        assert!(!f.contains(&rg));
        let rg2 = ResourceId::parse("/subscriptions/s1/resourceGroups/rg2").unwrap();
        assert!(!rg.contains(&rg2));
        assert_eq!(f.subscription(), Some("s1"));
    }

    #[test]
    fn a_unicode_resource_group_next_to_its_ascii_prefix_neither_panics_nor_matches() {
        let ascii = ResourceId::parse("/subscriptions/s1/resourceGroups/rg").unwrap();
        let unicode = ResourceId::parse(
            "/subscriptions/s1/resourceGroups/rgé/providers/Microsoft.DataFactory/factories/fä",
        )
        .unwrap();
        assert!(!ascii.contains(&unicode));
        let same = ResourceId::parse("/subscriptions/s1/resourceGroups/RGÉ").unwrap();
        assert!(same.contains(&unicode));
    }

    #[test]
    fn names_from_data_are_encoded_and_cannot_climb_out() {
        let f = ResourceId::parse(F).unwrap();
        let hostile = "x/../../../../pipelines/p1/createRun?api-version=2018-06-01#";
        let ir = f
            .child("integrationruntimes", hostile)
            .unwrap()
            .join(&["getStatus"]);
        let url = ir.url(&endpoint(), "2018-06-01").unwrap();
        assert!(
            url.path()
                .starts_with(&format!("{F}/integrationruntimes/x%2F..%2F")),
            "{url}"
        );
        assert!(url.path().ends_with("/getStatus"));
        assert_eq!(url.query(), Some("api-version=2018-06-01"));
        assert!(f.child("linkedservices", "..").is_err());
        assert!(f.child("linkedservices", ".").is_err());
        assert!(f.child("linkedservices", "").is_err());
        let unicode = f.child("linkedservices", "Verknüpfung ä").unwrap();
        let url = unicode.url(&endpoint(), "2018-06-01").unwrap();
        assert!(url.path().ends_with("/Verkn%C3%BCpfung%20%C3%A4"), "{url}");
    }

    #[test]
    fn next_links_follow_only_the_same_origin() {
        let e = endpoint();
        for ok in [
            "https://management.azure.com/subscriptions/s/x?page=2",
            "https://management.azure.com:443/subscriptions/s/x?page=2",
            "HTTPS://Management.Azure.COM/subscriptions/s/x",
        ] {
            assert!(next_link(&e, ok).is_some(), "{ok}");
        }
        for bad in [
            "https://management.azure.com.evil.example/x",
            "https://evil.example/https://management.azure.com/x",
            "http://management.azure.com/x",
            "https://management.azure.com:8443/x",
            "https://user@management.azure.com/x",
            "/relative",
            "",
        ] {
            assert!(next_link(&e, bad).is_none(), "{bad}");
        }
        let local = Url::parse("https://127.0.0.1:8443").unwrap();
        assert!(next_link(&local, "https://127.0.0.1:8443/a").is_some());
        assert!(next_link(&local, "https://127.0.0.1:8444/a").is_none());
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "subscriptions/s",
            "/",
            "//x",
            "/a//b",
            "/a/../b",
            "/a/./b",
            "/a?x",
            "/a#b",
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,80}") {
            if let Ok(id) = ResourceId::parse(&text) {
                let _ = id.url(&endpoint(), "2018-06-01");
                let _ = id.factory();
                let _ = id.contains(&id);
            }
        }

        #[test]
        fn any_name_round_trips_through_a_url(name in "\\PC{1,40}") {
            let f = ResourceId::parse(F).unwrap();
            if let Ok(child) = f.child("linkedservices", &name) {
                let url = child.url(&endpoint(), "2018-06-01").unwrap();
                let back: Vec<String> = url.path_segments().unwrap().map(percent_encoding_decode).collect();
                prop_assert_eq!(back.last().map(String::as_str), Some(name.as_str()));
                prop_assert_eq!(back.len(), 10);
            }
        }

        #[test]
        fn containment_ignores_case_and_never_panics(a in "[a-zA-Zé\u{0130}ß-]{1,8}", b in "[a-zA-Zé\u{0130}ß-]{1,8}") {
            let scope = ResourceId::parse(&format!("/subscriptions/s/resourceGroups/{a}")).unwrap();
            let id = ResourceId::parse(&format!("/subscriptions/s/resourceGroups/{b}/providers/Microsoft.DataFactory/factories/f")).unwrap();
            prop_assert_eq!(scope.contains(&id), a.to_lowercase() == b.to_lowercase());
        }

        #[test]
        fn next_link_never_panics(link in "\\PC{0,80}") {
            let _ = next_link(&endpoint(), &link);
        }
    }
}

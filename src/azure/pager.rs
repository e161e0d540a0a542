//! The one pager of every listing (ARM, Synapse development endpoints, Key Vault): follows `nextLink` to the end,
//! or fails; a listing is never cut short silently.
//!
//! Each page is fetched by the client through the one retry loop, checked by
//! [`super::request::check_page`] (items that are objects, no error in place of a page, a `nextLink` on the origin
//! it came from, checked before any connection is made). Here: a `nextLink` back to a page already read is a broken
//! listing at once, and a listing past the page cap is an error.

use super::auth::redact_query;
use super::error::AzureError;
use serde_json::Value;
use std::collections::HashSet;
use url::Url;

/// The most pages one listing follows; a listing that goes on longer is reported, never cut short silently.
pub const MAX_PAGES: u32 = 10_000;

/// What a listing held on to, and how many items it listed in all.
#[derive(Debug, Default)]
pub struct Listed {
    pub kept: Vec<Value>,
    pub count: usize,
}

/// Reads a listing from `first`: `page(url)` fetches one checked page; only the items `keep` accepts are held, and
/// each page is dropped before the next is read, so a long listing never sits in memory whole.
pub async fn list<F, Fut>(
    operation: &'static str,
    first: Url,
    max_pages: u32,
    keep: &(dyn Fn(&Value) -> bool + Sync),
    mut page: F,
) -> Result<Listed, AzureError>
where
    F: FnMut(Url) -> Fut,
    Fut: std::future::Future<Output = Result<Value, AzureError>>,
{
    let mut listed = Listed::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut next = Some(first);
    let mut pages = 0u32;
    while let Some(url) = next.take() {
        // `Url` writes host case and a default port one way, so a link spelled otherwise is still recognised.
        if !seen.insert(url.as_str().to_string()) {
            return Err(AzureError::LoopingListing {
                operation,
                link: redact_query(url.as_str()),
            });
        }
        pages += 1;
        if pages > max_pages {
            return Err(AzureError::TooManyPages {
                operation,
                pages: max_pages,
            });
        }
        let mut body = page(url.clone()).await?;
        if let Some(Value::Array(items)) = body.get_mut("value").map(Value::take) {
            listed.count += items.len();
            listed
                .kept
                .extend(items.into_iter().filter(|item| keep(item)));
        }
        next = match body
            .get("nextLink")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
        {
            None => None,
            Some(link) => Some(
                super::request::follow(&url, link)
                    .ok_or_else(|| AzureError::ForeignLink(redact_query(link)))?,
            ),
        };
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[tokio::test]
    async fn a_listing_is_followed_to_its_end_holding_what_keep_accepts() {
        let mut fetched = Vec::new();
        let listed = list(
            "op",
            url("https://h/items?p=1"),
            10,
            &|item| item["keep"] == true,
            |u| {
                fetched.push(u.to_string());
                let body = if u.query() == Some("p=1") {
                    json!({"value": [{"keep": true}, {"keep": false}], "nextLink": "https://H:443/items?p=2"})
                } else {
                    json!({"value": [{"keep": true}]})
                };
                async move { Ok(body) }
            },
        )
        .await
        .expect("listed");
        assert_eq!((listed.kept.len(), listed.count), (2, 3));
        assert_eq!(fetched, ["https://h/items?p=1", "https://h/items?p=2"]);
    }

    #[tokio::test]
    async fn a_next_link_back_to_a_page_already_read_fails_at_once() {
        let mut calls = 0;
        let looped = list("op", url("https://h/items?p=1"), 10_000, &|_| true, |u| {
            calls += 1;
            let next = if u.query() == Some("p=1") {
                "https://h/items?p=2"
            } else {
                // Spelled differently, the same page.
                "https://H:443/items?p=1"
            };
            async move { Ok(json!({"value": [{}], "nextLink": next})) }
        })
        .await;
        assert!(
            matches!(looped, Err(AzureError::LoopingListing { .. })),
            "{looped:?}"
        );
        assert_eq!(calls, 2, "no page is read twice");
    }

    #[tokio::test]
    async fn a_listing_past_the_page_cap_is_an_error() {
        let capped =
            list("op", url("https://h/items?p=0"), 3, &|_| true, |u| {
                let n: u32 = u
                    .query()
                    .and_then(|q| q.strip_prefix("p="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                async move {
                    Ok(json!({"value": [], "nextLink": format!("https://h/items?p={}", n + 1)}))
                }
            })
            .await;
        assert!(
            matches!(capped, Err(AzureError::TooManyPages { pages: 3, .. })),
            "{capped:?}"
        );
    }
}

//! Query strings and GitHub's page-based pagination: `per_page` (default 30, at most 100),
//! `page` (from 1) and the `Link` header with `prev`, `next`, `last` and `first` in the order
//! GitHub writes them. Links are absolute URLs on the emulator's own address and keep the
//! caller's other query parameters as sent, so a client that follows them needs no URL logic.

use percent_encoding::percent_decode_str;

/// The default page size.
pub(crate) const DEFAULT_PER_PAGE: usize = 30;
/// The largest page size GitHub honours; larger requests are capped.
pub(crate) const MAX_PER_PAGE: usize = 100;

/// A query string, kept raw so that links can repeat it as sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) => (key.to_string(), value.to_string()),
                None => (pair.to_string(), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`, decoded.
    pub fn get(&self, key: &str) -> Option<String> {
        self.all(key).into_iter().next()
    }

    /// Every value of `key`, decoded, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| decode(k) == key)
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// The query without `key`, raw.
    fn without(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| decode(k) != key)
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// Decodes one query component (`+` is a space in query strings).
fn decode(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The page a list request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub page: usize,
    pub per_page: usize,
}

impl Page {
    /// Reads `page` and `per_page`; missing or unreadable values take the defaults, as on GitHub.
    pub fn from_query(query: &Query) -> Page {
        let number = |key: &str| {
            query
                .get(key)
                .and_then(|value| value.trim().parse::<usize>().ok())
        };
        let per_page = match number("per_page") {
            Some(0) | None => DEFAULT_PER_PAGE,
            Some(n) => n.min(MAX_PER_PAGE),
        };
        let page = number("page").unwrap_or(1).max(1);
        Page { page, per_page }
    }

    /// The items on this page.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(items.len());
        let end = start.saturating_add(self.per_page).min(items.len());
        &items[start..end]
    }

    /// The `Link` header for a list of `total` items served at `base_url` + `path`, or `None`
    /// when everything fits on one page.
    pub fn link(&self, base_url: &str, path: &str, query: &Query, total: usize) -> Option<String> {
        let last = total.div_ceil(self.per_page).max(1);
        let others = query.without("page");
        let url = |page: usize| {
            let mut params = others.clone();
            params.push(format!("page={page}"));
            format!("<{base_url}{path}?{}>", params.join("&"))
        };

        let mut links = Vec::new();
        if self.page > 1 {
            links.push(format!("{}; rel=\"prev\"", url(self.page - 1)));
        }
        if self.page < last {
            links.push(format!("{}; rel=\"next\"", url(self.page + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        if self.page > 1 {
            links.push(format!("{}; rel=\"first\"", url(1)));
        }
        (!links.is_empty()).then(|| links.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_page_at_one_hundred_and_defaults_to_thirty() {
        assert_eq!(
            Page::from_query(&Query::parse("per_page=500")).per_page,
            100
        );
        assert_eq!(Page::from_query(&Query::parse("")).per_page, 30);
        assert_eq!(
            Page::from_query(&Query::parse("per_page=x&page=0")),
            Page {
                page: 1,
                per_page: 30
            }
        );
    }

    #[test]
    fn middle_page_links_in_github_order_keeping_other_parameters() {
        let query = Query::parse("package_type=container&per_page=2&page=2");
        let page = Page::from_query(&query);
        let link = page
            .link("http://h", "/orgs/a/packages", &query, 5)
            .unwrap();
        let base = "http://h/orgs/a/packages?package_type=container&per_page=2";
        assert_eq!(
            link,
            format!(
                "<{base}&page=1>; rel=\"prev\", <{base}&page=3>; rel=\"next\", \
                 <{base}&page=3>; rel=\"last\", <{base}&page=1>; rel=\"first\""
            )
        );
        assert_eq!(page.slice(&[1, 2, 3, 4, 5]), &[3, 4]);
    }

    #[test]
    fn single_page_has_no_link() {
        let query = Query::parse("package_type=container");
        assert_eq!(
            Page::from_query(&query).link("http://h", "/x", &query, 30),
            None
        );
    }
}

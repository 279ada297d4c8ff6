//! `run --pushgateway URL`: the run's metrics ([`crate::report::metrics`]) pushed to a Prometheus
//! Pushgateway, Prometheus's answer for batch jobs such as the CronJob. One group per cluster and
//! namespace (`job="argocd-mtls-verify"`, `cluster`, `namespace`), replaced by each push (HTTP
//! PUT): a check that is gone from the next run is gone from the group too.

use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;

/// The Pushgateway's `job` label for this tool's groups.
pub const JOB: &str = "argocd-mtls-verify";

/// Why a push failed. The URL in each is the one given without any password in it.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `--pushgateway` is not an http(s) URL.
    #[error("{url}: not an http:// or https:// URL: {why}")]
    Url {
        /// What was given (password removed).
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// No connection, or no answer within the time limit.
    #[error("{url}: {why}")]
    Unreachable {
        /// Where it was sent (password removed).
        url: String,
        /// The transport's error.
        why: String,
    },
    /// The Pushgateway answered with an error (a metric it refused, a proxy's 401).
    #[error("{url}: HTTP {status}: {body}")]
    Refused {
        /// Where it was sent (password removed).
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of its answer.
        body: String,
    },
}

/// The grouping key's path below `/metrics`: each value in URL-safe base64 (`@base64`), so an
/// empty value or one with a `/` is still one path segment.
pub fn group_path(cluster: &str, namespace: &str) -> String {
    let encode = |v: &str| {
        if v.is_empty() {
            "=".to_owned()
        } else {
            base64::engine::general_purpose::URL_SAFE.encode(v)
        }
    };
    format!(
        "/metrics/job/{JOB}/cluster@base64/{}/namespace@base64/{}",
        encode(cluster),
        encode(namespace)
    )
}

/// PUTs `metrics` (the text exposition format) to the group of `cluster` and `namespace` on the
/// Pushgateway at `base` (its URL, perhaps with a path prefix and `user:password@` for basic
/// auth), within `limit`.
pub async fn push(
    base: &str,
    cluster: &str,
    namespace: &str,
    metrics: String,
    limit: Duration,
) -> Result<(), PushError> {
    let mut url = url::Url::parse(base).map_err(|e| PushError::Url {
        url: crate::without_url_passwords(base),
        why: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PushError::Url {
            url: crate::without_url_passwords(base),
            why: format!("the scheme is {}", url.scheme()),
        });
    }
    let auth = (!url.username().is_empty()).then(|| {
        let pair = format!(
            "{}:{}",
            percent_decoded(url.username()),
            percent_decoded(url.password().unwrap_or_default())
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let shown = url.to_string();
    let path = format!(
        "{}{}",
        url.path().trim_end_matches('/'),
        group_path(cluster, namespace)
    );
    url.set_path(&path);
    let unreachable = |why: String| PushError::Unreachable {
        url: shown.clone(),
        why,
    };
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_connect_timeout(Some(limit));
    let builder = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    let mut request = http::Request::put(url.as_str())
        .header(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Full::new(bytes::Bytes::from(metrics)))
        .map_err(|e| unreachable(e.to_string()))?;
    if let Some(auth) = auth {
        let value = http::HeaderValue::from_str(&auth).map_err(|e| PushError::Url {
            url: shown.clone(),
            why: format!("its user or password: {e}"),
        })?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }
    // Plain http needs no CA certificates (the image has none); https uses the system's.
    let sent = if url.scheme() == "https" {
        tcp.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| unreachable(format!("no system CA certificates for https: {e}")))?
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        let client: Client<_, Full<bytes::Bytes>> = builder.build(https);
        tokio::time::timeout(limit, answer(client.request(request), &shown)).await
    } else {
        let client: Client<_, Full<bytes::Bytes>> = builder.build(tcp);
        tokio::time::timeout(limit, answer(client.request(request), &shown)).await
    };
    sent.map_err(|_| unreachable(format!("no answer within {} s", limit.as_secs())))?
}

/// The Pushgateway's answer to the PUT: success, or why not.
async fn answer(
    response: hyper_util::client::legacy::ResponseFuture,
    shown: &str,
) -> Result<(), PushError> {
    let response = response.await.map_err(|e| PushError::Unreachable {
        url: shown.to_owned(),
        why: crate::error_chain(&e),
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = Limited::new(response.into_body(), 4096)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
        .unwrap_or_default();
    Err(PushError::Refused {
        url: shown.to_owned(),
        status: status.as_u16(),
        body: body.chars().take(300).collect(),
    })
}

fn percent_decoded(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = v.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_one_segment_per_value_even_empty_or_with_a_slash() {
        assert_eq!(
            group_path("kind-a/b", ""),
            "/metrics/job/argocd-mtls-verify/cluster@base64/a2luZC1hL2I=/namespace@base64/="
        );
        assert_eq!(
            group_path("prod", "argocd"),
            "/metrics/job/argocd-mtls-verify/cluster@base64/cHJvZA==/namespace@base64/YXJnb2Nk"
        );
    }

    #[test]
    fn no_password_reaches_a_message() {
        assert_eq!(
            crate::without_url_passwords("--pushgateway=https://ci:s3cret@push.example/prefix"),
            "--pushgateway=https://ci:REDACTED@push.example/prefix"
        );
        assert_eq!(
            crate::without_url_passwords("http://h:9091 http://u:p%40w:d@h/x http://u@h/"),
            "http://h:9091 http://u:REDACTED@h/x http://u@h/"
        );
        assert_eq!(percent_decoded("p%40ss%2Fword"), "p@ss/word");
    }

    #[tokio::test]
    async fn a_refusal_names_the_status_and_the_url_without_the_password() {
        // Nothing listens on a port just closed: the error is Unreachable, never a success.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = push(
            &format!("http://u:s3cret@127.0.0.1:{port}"),
            "c",
            "n",
            String::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PushError::Unreachable { .. }), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        let err = push("ftp://h/", "c", "n", String::new(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, PushError::Url { .. }), "{err}");
    }
}

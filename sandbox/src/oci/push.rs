//! A small distribution-API client for the sandbox: push blobs and manifests, delete blobs,
//! and read back what a registry serves.
//!
//! In token mode it signs its own push tokens with the sandbox's `TokenIssuer` instead of
//! walking the challenge flow: the registry checks them exactly as it checks the emulator's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::{Method, RequestBuilder, StatusCode};

use super::{Blob, Image, ImageIndex, OCI_INDEX, OCI_MANIFEST};
use crate::token::{Access, TokenIssuer};

/// The manifest types asked for when reading one back.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// How the client authenticates.
#[derive(Clone)]
pub enum PushAuth {
    /// No credentials (an open registry).
    Anonymous,
    /// HTTP basic auth.
    Basic { user: String, password: String },
    /// Bearer tokens signed on the spot, granting pull, push and delete on the repository.
    Issuer(Arc<TokenIssuer>),
}

/// How long a signed push token is reused; well inside the token's own lifetime.
const TOKEN_REUSE: Duration = Duration::from_secs(60);

/// A registry client bound to one registry.
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    auth: PushAuth,
    /// Push tokens by repository, with when they were signed: signing every request would
    /// cost more than the request itself in an unoptimised build.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl RegistryClient {
    /// A client for the registry at `registry_url` (`http://127.0.0.1:PORT`).
    pub fn new(registry_url: &str, auth: PushAuth) -> anyhow::Result<RegistryClient> {
        let http = reqwest::Client::builder()
            .build()
            .context("building an HTTP client")?;
        let base = registry_url.trim_end_matches('/').to_owned();
        Ok(RegistryClient {
            http,
            base,
            auth,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `repository` has the blob `digest`.
    pub async fn blob_exists(&self, repository: &str, digest: &str) -> anyhow::Result<bool> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self
            .send(self.request(Method::HEAD, &url, repository)?)
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => bail!("HEAD blob {digest} in {repository} answered {status}"),
        }
    }

    /// Uploads `blob` to `repository` unless it is already there (POST, then PUT ?digest=).
    pub async fn push_blob(&self, repository: &str, blob: &Blob) -> anyhow::Result<()> {
        if self.blob_exists(repository, &blob.digest).await? {
            return Ok(());
        }

        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self
            .send(self.request(Method::POST, &start, repository)?)
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            bail!(
                "starting a blob upload to {repository} answered {}",
                response.status()
            );
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .context("the registry started an upload without a Location")?;
        let mut upload = reqwest::Url::parse(&start)
            .and_then(|base| base.join(location))
            .with_context(|| format!("the upload Location {location:?} is no URL"))?;
        upload.query_pairs_mut().append_pair("digest", &blob.digest);

        let request = self
            .request(Method::PUT, upload.as_str(), repository)?
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(blob.bytes.clone());
        let response = self.send(request).await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            bail!(
                "uploading blob {} to {repository} answered {status}: {}",
                blob.digest,
                body(response).await
            );
        }
        Ok(())
    }

    /// Stores `manifest` under `reference` (a tag or its digest), with its media type as
    /// Content-Type; checks the digest the registry computed.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Blob,
    ) -> anyhow::Result<()> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let request = self
            .request(Method::PUT, &url, repository)?
            .header(reqwest::header::CONTENT_TYPE, &manifest.media_type)
            .body(manifest.bytes.clone());
        let response = self.send(request).await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            bail!(
                "pushing manifest {repository}:{reference} answered {status}: {}",
                body(response).await
            );
        }
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if digest != manifest.digest {
            bail!(
                "registry stored {repository}:{reference} as {digest:?}, not {}",
                manifest.digest
            );
        }
        Ok(())
    }

    /// Pushes an image's blobs, then its manifest under each tag, or by digest when untagged.
    pub async fn push_image(
        &self,
        repository: &str,
        image: &Image,
        tags: &[String],
    ) -> anyhow::Result<()> {
        self.push_blob(repository, &image.config).await?;
        for layer in &image.layers {
            self.push_blob(repository, layer).await?;
        }
        self.push_references(repository, &image.manifest, tags)
            .await
    }

    /// Pushes each platform image by digest, then the index under each tag (or by digest).
    pub async fn push_index(
        &self,
        repository: &str,
        index: &ImageIndex,
        tags: &[String],
    ) -> anyhow::Result<()> {
        for image in &index.images {
            self.push_image(repository, image, &[]).await?;
        }
        self.push_references(repository, &index.index, tags).await
    }

    /// Removes `digest` from `repository`, so that manifests naming it point at nothing.
    pub async fn delete_blob(&self, repository: &str, digest: &str) -> anyhow::Result<()> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self
            .send(self.request(Method::DELETE, &url, repository)?)
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            let status = response.status();
            bail!(
                "deleting blob {digest} from {repository} answered {status}: {}",
                body(response).await
            );
        }
        Ok(())
    }

    /// Reads a manifest back: its Content-Type and exact bytes.
    pub async fn pull_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> anyhow::Result<(String, Vec<u8>)> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let request = self
            .request(Method::GET, &url, repository)?
            .header("Accept", MANIFEST_ACCEPT);
        let response = self.send(request).await?;
        if response.status() != StatusCode::OK {
            bail!(
                "GET manifest {repository}:{reference} answered {}",
                response.status()
            );
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.context("reading a manifest")?;
        Ok((content_type, bytes.to_vec()))
    }

    /// Reads a blob back; `None` when the registry answers 404.
    pub async fn pull_blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self
            .send(self.request(Method::GET, &url, repository)?)
            .await?;
        match response.status() {
            StatusCode::OK => Ok(Some(
                response.bytes().await.context("reading a blob")?.to_vec(),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            status => bail!("GET blob {digest} in {repository} answered {status}"),
        }
    }

    async fn push_references(
        &self,
        repository: &str,
        manifest: &Blob,
        tags: &[String],
    ) -> anyhow::Result<()> {
        debug_assert!(manifest.media_type == OCI_MANIFEST || manifest.media_type == OCI_INDEX);
        if tags.is_empty() {
            return self
                .push_manifest(repository, &manifest.digest, manifest)
                .await;
        }
        for tag in tags {
            self.push_manifest(repository, tag, manifest).await?;
        }
        Ok(())
    }

    fn request(
        &self,
        method: Method,
        url: &str,
        repository: &str,
    ) -> anyhow::Result<RequestBuilder> {
        let request = self.http.request(method, url);
        Ok(match &self.auth {
            PushAuth::Anonymous => request,
            PushAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
            PushAuth::Issuer(issuer) => request.bearer_auth(self.token_for(issuer, repository)?),
        })
    }

    /// A token granting pull, push and delete on `repository`, signed anew once a minute.
    fn token_for(&self, issuer: &TokenIssuer, repository: &str) -> anyhow::Result<String> {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, signed)) = tokens.get(repository)
            && signed.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let access = Access::repository(repository, &["pull", "push", "delete"]);
        let token = issuer.issue("dragnet-sandbox", vec![access])?;
        tokens.insert(repository.to_owned(), (token.clone(), Instant::now()));
        Ok(token)
    }

    async fn send(&self, request: RequestBuilder) -> anyhow::Result<reqwest::Response> {
        request
            .send()
            .await
            .with_context(|| format!("reaching the registry at {}", self.base))
    }
}

/// A response body for an error message, cut short.
async fn body(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    text.chars().take(300).collect()
}

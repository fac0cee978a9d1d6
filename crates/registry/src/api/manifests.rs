//! Manifests: GET/HEAD by tag or digest, PUT (validated, with `OCI-Subject` for referrers),
//! DELETE, and the referrers API.

use gorae_image::{media, Digest};
use http::header::{ACCEPT, CONTENT_TYPE, ETAG, LOCATION};
use http::{Method, StatusCode};

use super::{blocking, ApiResult, Registry, CONTENT_DIGEST, OCI_FILTERS_APPLIED, OCI_SUBJECT};
use crate::error::{ApiError, ErrorCode};
use crate::http::{BodyError, Request, Response};
use crate::names::Reference;
use crate::storage::StoredManifest;

pub(super) async fn get(
    registry: &Registry,
    request: &Request<'_>,
    name: &str,
    reference: &Reference,
) -> ApiResult {
    let reference_text = reference.to_string();
    let stored = match &registry.proxy {
        Some(proxy) if proxy.mirrors(name) => {
            proxy
                .manifest(name, &reference_text, request.header(ACCEPT))
                .await?
        }
        _ => registry.storage.get_manifest(name, &reference_text)?,
    };
    let Some(StoredManifest {
        digest,
        media_type,
        bytes,
    }) = stored
    else {
        return Err(ApiError::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {name}:{reference} is not known to this registry"),
        ));
    };
    let response = Response::new(StatusCode::OK)
        .header(CONTENT_DIGEST, digest.to_string())
        .header(ETAG, format!("\"{digest}\""));
    if request.method == Method::HEAD {
        return Ok(response
            .header(CONTENT_TYPE, &media_type)
            .content_length(bytes.len() as u64));
    }
    Ok(response.bytes(&media_type, bytes))
}

pub(super) async fn put(
    registry: &Registry,
    request: &mut Request<'_>,
    name: &str,
    reference: &Reference,
) -> ApiResult {
    registry.writable(name)?;
    let limit = registry.max_manifest_size;
    let bytes = request.body.to_bytes(limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit } => ApiError::new(
            ErrorCode::ManifestInvalid,
            format!("manifest larger than {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE),
        BodyError::Io(e) => ApiError::new(
            ErrorCode::ManifestInvalid,
            format!("reading the manifest: {e}"),
        ),
    })?;
    let content_type = request.header(CONTENT_TYPE).map(str::to_string);
    let storage = registry.storage.clone();
    let (repo, reference_text) = (name.to_string(), reference.to_string());
    let put = blocking(move || {
        storage.put_manifest(&repo, &reference_text, content_type.as_deref(), &bytes)
    })
    .await?;
    let mut response = Response::new(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{name}/manifests/{}", put.digest))
        .header(CONTENT_DIGEST, put.digest.to_string());
    if let Some(subject) = put.subject {
        response = response.header(OCI_SUBJECT, subject.to_string());
    }
    Ok(response)
}

pub(super) async fn delete(registry: &Registry, name: &str, reference: &Reference) -> ApiResult {
    registry.writable(name)?;
    let storage = registry.storage.clone();
    let (repo, reference_text) = (name.to_string(), reference.to_string());
    blocking(move || storage.delete_manifest(&repo, &reference_text)).await?;
    Ok(Response::new(StatusCode::ACCEPTED))
}

pub(super) fn referrers(
    registry: &Registry,
    request: &Request<'_>,
    name: &str,
    subject: &Digest,
) -> ApiResult {
    let artifact_type = request.query_param("artifactType");
    let manifests = registry
        .storage
        .referrers(name, subject, artifact_type.as_deref())?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let body = serde_json::to_vec(&index).unwrap_or_default();
    let mut response = Response::new(StatusCode::OK).bytes(media::OCI_INDEX, body);
    if artifact_type.is_some() {
        response = response.header(OCI_FILTERS_APPLIED, "artifactType");
    }
    Ok(response)
}

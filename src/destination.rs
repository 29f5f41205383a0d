//! Object stores: S3, Azure Blob and Google Cloud Storage, through `object_store`.
//!
//! Credentials and endpoints come from the environment only (`AWS_*`, `AZURE_*`,
//! `GOOGLE_*`, as each SDK documents them), so they are never stored by Cairn.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use url::Url;

use crate::{Error, Result};

/// An object store client for the bucket or container that `url` names.
pub fn object_store_for(url: &Url) -> Result<Arc<dyn ObjectStore>> {
    let wrap = |source: object_store::Error| Error::ObjectStore {
        href: url.to_string(),
        source,
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" => Arc::new(
            AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(wrap)?,
        ),
        "az" => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(wrap)?,
        ),
        "gs" => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(wrap)?,
        ),
        other => {
            return Err(Error::invalid_input(format!(
                "{url} uses {other}://, which is not an object store (s3://, az://, gs://)"
            )));
        }
    };
    Ok(store)
}

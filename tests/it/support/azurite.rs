//! A real Azure Blob API: `azurite-blob` (npm `azurite`) on a free loopback port.

use std::process::{Child, Command};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use object_store::ObjectStore;
use object_store::azure::MicrosoftAzureBuilder;
use sha2::{Digest, Sha256};

/// Azurite's well-known development account (public, documented by Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running `azurite-blob`, killed when dropped; its data lives in a
/// temporary folder.
pub struct Azurite {
    pub endpoint: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl Azurite {
    pub fn start() -> Azurite {
        let port = super::free_port();
        let data = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(super::program("CAIRN_AZURITE", "azurite-blob"));
        command
            .args(["--disableTelemetry", "--skipApiVersionCheck", "--silent"])
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(data.path());
        let child = super::start_server(command, "azurite-blob", &addr);
        Azurite {
            endpoint: format!("http://{addr}"),
            child,
            _data: data,
        }
    }

    /// The environment a Cairn process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.endpoint.clone()),
        ]
    }

    /// Creates `container` (signed with the account key, as Azure requires)
    /// and returns a client for it.
    pub async fn container(&self, container: &str) -> Arc<dyn ObjectStore> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
        );
        let signature = STANDARD.encode(hmac_sha256(
            &STANDARD.decode(KEY).unwrap(),
            to_sign.as_bytes(),
        ));
        let created = reqwest::Client::new()
            .put(format!(
                "{}/{ACCOUNT}/{container}?restype=container",
                self.endpoint
            ))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{:?}", created.text().await);
        Arc::new(
            MicrosoftAzureBuilder::new()
                .with_account(ACCOUNT)
                .with_access_key(KEY)
                .with_endpoint(format!("{}/{ACCOUNT}", self.endpoint))
                .with_allow_http(true)
                .with_container_name(container)
                .build()
                .unwrap(),
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

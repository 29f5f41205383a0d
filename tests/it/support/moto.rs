//! A real S3 API: `moto_server` (PyPI `moto[server]`) on a free loopback port.

use std::process::{Child, Command};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// A running `moto_server`, killed when dropped.
pub struct MotoServer {
    pub endpoint: String,
    child: Child,
}

impl MotoServer {
    pub fn start() -> MotoServer {
        let port = super::free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(super::program("CAIRN_MOTO", "moto_server"));
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let child = super::start_server(command, "moto_server", &addr);
        MotoServer {
            endpoint: format!("http://{addr}"),
            child,
        }
    }

    /// The environment a Cairn process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "cairn-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "cairn-test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".into()),
        ]
    }

    /// Creates `bucket` and returns a client for it.
    pub async fn bucket(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{created:?}");
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        for (key, value) in self.env() {
            builder = builder.with_config(key.to_lowercase().parse().unwrap(), value);
        }
        Arc::new(builder.build().unwrap())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

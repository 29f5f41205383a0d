//! `cairn sign-in`: keeps a bucket's or container's login in this
//! computer's keyring, for every later job, estimate and check (of the
//! command line and of the app). The secret is read from standard input,
//! never from the command line, where other users of the computer could
//! see it.

use std::io::BufRead;

use cairn::destination::{BucketLogin, is_bucket_address, remember_bucket_login};
use cairn::{Error, Result};
use serde_json::json;

use super::{EXIT_OK, json_line};

/// Arguments of `cairn sign-in`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bucket or container: s3://bucket, az://container or gs://bucket.
    address: String,
    /// S3: the access key id. Azure: the storage account.
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
    /// Read the secret from standard input (one line): S3's secret access
    /// key, Azure's account key or SAS token.
    #[arg(long)]
    secret_stdin: bool,
    /// S3: the bucket's region.
    #[arg(long)]
    region: Option<String>,
    /// The address of an S3-compatible store (MinIO, Ceph...) or an Azure
    /// emulator.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Google Cloud Storage: the path of a service account key file.
    #[arg(long, value_name = "PATH")]
    key_file: Option<std::path::PathBuf>,
    /// Remove the login kept for this bucket.
    #[arg(long, conflicts_with_all = ["key_id", "secret_stdin", "region", "endpoint", "key_file"])]
    forget: bool,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

/// Keeps (or with `--forget` removes) the login of one bucket.
pub fn run(args: Args) -> Result<u8> {
    let address = args.address.trim().trim_end_matches('/').to_string();
    if !is_bucket_address(&address) {
        return Err(Error::invalid_input(format!(
            "{address:?} is not a bucket address: give s3://bucket, az://container or gs://bucket"
        )));
    }
    let said = if args.forget {
        remember_bucket_login(&address, None)?;
        format!("The login kept for {address} is removed from this computer's keyring.")
    } else {
        let secret = if args.secret_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::invalid_input(format!("the secret could not be read: {e}")))?;
            line.trim().to_string()
        } else {
            String::new()
        };
        let key_file = match &args.key_file {
            Some(path) => std::path::absolute(path)
                .map_err(|e| Error::Io {
                    path: path.display().to_string(),
                    source: e,
                })?
                .display()
                .to_string(),
            None => String::new(),
        };
        let login = BucketLogin {
            key_id: args.key_id.unwrap_or_default(),
            secret,
            region: args.region.unwrap_or_default(),
            endpoint: args.endpoint.unwrap_or_default(),
            key_file,
        };
        if login == BucketLogin::default() {
            return Err(Error::invalid_input(
                "give the login to keep: --key-id with --secret-stdin, --key-file, or --forget to remove one",
            ));
        }
        remember_bucket_login(&address, Some(&login))?;
        format!(
            "The login for {address} is kept in this computer's keyring: every job, estimate and check that reaches {address} uses it."
        )
    };
    if args.json {
        let line =
            json!({"type": "summary", "address": address, "kept": !args.forget, "message": said});
        json_line(&mut std::io::stdout().lock(), &line);
    } else {
        say!("{said}");
    }
    Ok(EXIT_OK)
}

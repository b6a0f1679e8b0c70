//! Recordings in S3-compatible object storage: `[recorder.upload]`, the
//! uploader thread that ships sealed segments and a signed manifest, and
//! the bucket access `tollgate recordings ... --from s3://` reads through.
//!
//! Layout under `s3://bucket/prefix/`:
//!
//! ```text
//! <host_id>/shard-<N>/<base>.seg          a sealed segment, as on disk
//! <host_id>/shard-<N>/sessions.idx        the shard's session index (a listing aid)
//! <host_id>/manifest/<version>.json       signed manifest versions 1, 2, ...
//! ```
//!
//! See `tollgate_recorder::manifest` for what a manifest proves.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub mod catalog;
pub mod cli;
pub mod s3;
pub mod source;
pub mod uploader;

pub use s3::{Bucket, Credentials, S3Error};

/// `[recorder.upload]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    /// `s3://bucket/prefix`
    pub url: String,
    /// `http(s)://host:port` of an S3-compatible server; absent: AWS S3.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The access key id, inline (it is not a secret) ...
    pub access_key_id: Option<String>,
    /// ... or from a file.
    pub access_key_id_file: Option<PathBuf>,
    /// The secret, from a file (never inline); absent: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key_file: Option<PathBuf>,
    /// This host's folder in the bucket; default: the host name.
    pub host_id: Option<String>,
    /// Delete a local segment once it is confirmed, verified and listed in a
    /// manifest in the bucket (default true).
    pub delete_local_after_upload: Option<bool>,
    /// How often the recording directory is scanned for sealed segments.
    #[serde(default, with = "humantime_serde")]
    pub scan_interval: Option<Duration>,
    /// Longest wait between retries while the store fails.
    #[serde(default, with = "humantime_serde")]
    pub max_backoff: Option<Duration>,
    /// Per-request time limit.
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
}

/// Where credentials come from (read when the uploader starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Inline(String),
    File(PathBuf),
    Env(&'static str),
}

impl KeySource {
    fn read(&self) -> Result<String, String> {
        let v = match self {
            Self::Inline(v) => v.clone(),
            Self::File(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
            Self::Env(name) => std::env::var(name).map_err(|_| format!("{name} is not set"))?,
        };
        let v = v.trim().to_string();
        if v.is_empty() || v.len() > 1024 {
            return Err(format!("{} is empty or too long", self.name()));
        }
        Ok(v)
    }

    fn name(&self) -> String {
        match self {
            Self::Inline(_) => "the inline access key id".into(),
            Self::File(p) => p.display().to_string(),
            Self::Env(n) => (*n).to_string(),
        }
    }
}

/// A bucket and prefix, from `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl S3Url {
    pub fn parse(url: &str) -> Result<S3Url, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} names no bucket"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(format!("{url:?}: the prefix has an empty, . or .. part"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }
}

/// Everything needed to reach the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub url: S3Url,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: KeySource,
    pub secret_access_key: KeySource,
    pub request_timeout: Duration,
}

impl StoreConfig {
    /// Reads the credentials and builds the client.
    pub fn open(&self) -> Result<Bucket, String> {
        let creds = Credentials {
            access_key_id: self.access_key_id.read()?,
            secret_access_key: self.secret_access_key.read()?,
        };
        Bucket::new(
            self.endpoint.as_deref(),
            &self.url.bucket,
            &self.region,
            creds,
            self.request_timeout,
        )
    }
}

/// `[recorder.upload]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    pub store: StoreConfig,
    pub host_id: String,
    pub delete_local_after_upload: bool,
    pub scan_interval: Duration,
    pub max_backoff: Duration,
}

/// Default region when none is given (Garage answers to any region name
/// it was configured with; AWS needs the bucket's).
pub const DEFAULT_REGION: &str = "us-east-1";

impl UploadConfig {
    /// Validates; an error names the field (under `recorder.upload.`).
    pub fn from_raw(raw: RawUpload) -> Result<UploadConfig, (&'static str, String)> {
        let url = S3Url::parse(&raw.url).map_err(|e| ("url", e))?;
        if let Some(e) = &raw.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(("endpoint", format!("{e:?} is not http:// or https://")));
        }
        let access_key_id = match (raw.access_key_id, raw.access_key_id_file) {
            (Some(_), Some(_)) => {
                return Err((
                    "access_key_id",
                    "give access_key_id or access_key_id_file, not both".into(),
                ));
            }
            (Some(v), None) => KeySource::Inline(v),
            (None, Some(p)) => KeySource::File(p),
            (None, None) => KeySource::Env("AWS_ACCESS_KEY_ID"),
        };
        let secret_access_key = raw
            .secret_access_key_file
            .map_or(KeySource::Env("AWS_SECRET_ACCESS_KEY"), KeySource::File);
        let host_id = raw.host_id.unwrap_or_else(default_host_id);
        if !tollgate_recorder::manifest::valid_host_id(&host_id) {
            return Err((
                "host_id",
                format!("{host_id:?}: 1 to 64 of A-Z a-z 0-9 . _ - (set host_id)"),
            ));
        }
        let nonzero = |d: Option<Duration>, field, default| match d {
            Some(d) if d.is_zero() => Err((field, "must be above zero".to_string())),
            Some(d) => Ok(d),
            None => Ok(default),
        };
        Ok(UploadConfig {
            store: StoreConfig {
                url,
                endpoint: raw.endpoint,
                region: raw.region.unwrap_or_else(|| DEFAULT_REGION.into()),
                access_key_id,
                secret_access_key,
                request_timeout: nonzero(
                    raw.request_timeout,
                    "request_timeout",
                    Duration::from_secs(120),
                )?,
            },
            host_id,
            delete_local_after_upload: raw.delete_local_after_upload.unwrap_or(true),
            scan_interval: nonzero(raw.scan_interval, "scan_interval", Duration::from_secs(5))?,
            max_backoff: nonzero(raw.max_backoff, "max_backoff", Duration::from_secs(60))?,
        })
    }
}

/// The host name (`HOSTNAME`, then `/etc/hostname`), cut at the first dot.
fn default_host_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        assert_eq!(
            S3Url::parse("s3://rec/fleet/a/").unwrap(),
            S3Url {
                bucket: "rec".into(),
                prefix: "fleet/a/".into()
            }
        );
        assert_eq!(S3Url::parse("s3://rec").unwrap().prefix, "");
        for bad in ["http://x/y", "s3:///p", "s3://b/../x", "s3://b/a//c"] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upload_config_defaults_and_named_errors() {
        let raw = RawUpload {
            url: "s3://b/p".into(),
            host_id: Some("gw-1".into()),
            ..Default::default()
        };
        let c = UploadConfig::from_raw(raw.clone()).unwrap();
        assert!(c.delete_local_after_upload);
        assert_eq!(
            c.store.secret_access_key,
            KeySource::Env("AWS_SECRET_ACCESS_KEY")
        );
        let bad = RawUpload {
            host_id: Some("../x".into()),
            ..raw.clone()
        };
        assert_eq!(UploadConfig::from_raw(bad).unwrap_err().0, "host_id");
        let bad = RawUpload {
            scan_interval: Some(Duration::ZERO),
            ..raw
        };
        assert_eq!(UploadConfig::from_raw(bad).unwrap_err().0, "scan_interval");
    }
}

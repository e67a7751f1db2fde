//! Where a mount's region and credentials come from. The AWS SDK's default
//! chains end by asking the EC2 instance metadata service (IMDS), which
//! anywhere but on EC2 means warnings and delays at start. So the chains
//! here stop before IMDS whenever anything names the store or the identity:
//! the mount's `region=`, `endpoint=` or keys, or the standard AWS
//! variables. Only a mount of AWS itself with nothing configured asks IMDS,
//! as an EC2 instance role needs.

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::config::{Credentials, Region};

use super::uri::S3Uri;

/// The region when nothing names one.
pub(super) const DEFAULT_REGION: &str = "us-east-1";

/// The endpoint a mount's requests go to: the mount's, else the standard
/// variables' (None: AWS itself).
pub(super) fn endpoint(uri: &S3Uri) -> Option<String> {
    uri.endpoint.clone().or_else(|| {
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    })
}

/// True when IMDS may be asked: a mount of AWS itself that names neither
/// keys nor anything else, with no keys in the environment.
fn may_ask_imds(uri: &S3Uri) -> bool {
    endpoint(uri).is_none()
        && uri.access_key.is_none()
        && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
}

/// The signing region: the mount's `region=`, the AWS variables, the
/// profile, IMDS where allowed, else [`DEFAULT_REGION`].
pub(super) async fn region(uri: &S3Uri) -> Region {
    if let Some(region) = &uri.region {
        return Region::new(region.clone());
    }
    if let Some(region) = EnvironmentVariableRegionProvider::new().region().await {
        return region;
    }
    if let Some(region) = ProfileFileRegionProvider::builder().build().region().await {
        return region;
    }
    if may_ask_imds(uri) {
        if let Some(region) = ImdsRegionProvider::builder().build().region().await {
            return region;
        }
    }
    Region::new(DEFAULT_REGION)
}

/// The credentials: the mount's keys, else the standard chain (variables,
/// profile, web identity, container), with IMDS last only where allowed.
pub(super) async fn credentials(uri: &S3Uri, region: &Region) -> SharedCredentialsProvider {
    if let (Some(key), Some(secret)) = (&uri.access_key, &uri.secret_key) {
        return SharedCredentialsProvider::new(Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "s3ftp-mount-uri",
        ));
    }
    let conf = ProviderConfig::default().with_region(Some(region.clone()));
    if may_ask_imds(uri) {
        return SharedCredentialsProvider::new(
            DefaultCredentialsChain::builder()
                .region(region.clone())
                .configure(conf)
                .build()
                .await,
        );
    }
    SharedCredentialsProvider::new(
        CredentialsProviderChain::first_try(
            "Environment",
            EnvironmentVariableCredentialsProvider::new(),
        )
        .or_else(
            "Profile",
            ProfileFileCredentialsProvider::builder()
                .configure(&conf)
                .build(),
        )
        .or_else(
            "WebIdentityToken",
            WebIdentityTokenCredentialsProvider::builder()
                .configure(&conf)
                .build(),
        )
        .or_else(
            "EcsContainer",
            EcsCredentialsProvider::builder().configure(&conf).build(),
        ),
    )
}

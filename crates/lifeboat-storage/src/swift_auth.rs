//! Authentication for OpenStack Swift repositories: Keystone v3 (password or application
//! credential), Swift's own v1 auth (tempauth, swauth), or a pre-issued token.
//!
//! [`SwiftCredentials::from_env`] reads the variables python-openstackclient and
//! python-swiftclient read (`OS_CLOUD` with `clouds.yaml`, `OS_AUTH_URL` and friends,
//! `OS_STORAGE_URL` + `OS_AUTH_TOKEN`, `ST_AUTH`/`ST_USER`/`ST_KEY`); [`authenticate`] turns
//! them into a [`SwiftToken`]: the token, the storage URL of the account and when the token
//! expires. Passwords, keys and tokens are held in [`Secret`], whose `Debug` and `Display`
//! print `***`; no error message carries a secret or a request body.

use crate::StorageError;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one authentication request may take (connect, send, answer).
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// A token is renewed when less than this is left of its life.
const RENEW_BEFORE: jiff::SignedDuration = jiff::SignedDuration::from_secs(5 * 60);

/// A password, key, application-credential secret or token. `Debug` and `Display` print
/// `***`; [`Secret::expose`] gives the value to whoever must send it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself, for a request header or body. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to get a token for a Swift account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwiftCredentials {
    /// Keystone v3: password or application-credential method.
    Keystone(KeystoneAuth),
    /// Swift's own v1 auth (tempauth, swauth): `ST_AUTH` / `ST_USER` / `ST_KEY`.
    V1 {
        auth_url: String,
        user: String,
        key: Secret,
    },
    /// A pre-issued token and storage URL (`OS_STORAGE_URL` + `OS_AUTH_TOKEN`).
    Token { storage_url: String, token: Secret },
}

/// Keystone v3 authentication and the choice of the `object-store` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneAuth {
    /// The identity API, always ending in `/v3` (added when it was given without).
    pub auth_url: String,
    pub method: KeystoneMethod,
    /// The region of the `object-store` endpoint; `None` works when the catalog has one.
    pub region: Option<String>,
    pub interface: Interface,
}

/// The Keystone v3 authentication method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeystoneMethod {
    /// `password`, scoped to a project (Swift accounts belong to projects).
    Password {
        user: UserRef,
        password: Secret,
        project: ProjectRef,
    },
    /// `application_credential`: no scope, the credential carries its own project.
    ApplicationCredential {
        credential: AppCredRef,
        secret: Secret,
    },
}

/// A Keystone user: by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A Keystone project: by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A Keystone domain. When none is given, the domain with id `default` is used, as
/// python-openstackclient does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// An application credential: by id, or by name together with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredRef {
    Id(String),
    Name { name: String, user: UserRef },
}

/// Which of the catalog's endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(&self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    /// `public`, `internal`, `admin`, also in the `publicURL` form of v2 and swiftclient.
    pub fn parse(s: &str) -> Option<Interface> {
        let s = s.trim().to_ascii_lowercase();
        match s.strip_suffix("url").unwrap_or(&s) {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DomainRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainRef::Id(id) => write!(f, "domain id {id}"),
            DomainRef::Name(name) => write!(f, "domain {name}"),
        }
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Id(id) => write!(f, "user id {id}"),
            UserRef::Name { name, domain } => write!(f, "user {name} ({domain})"),
        }
    }
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "project id {id}"),
            ProjectRef::Name { name, domain } => write!(f, "project {name} ({domain})"),
        }
    }
}

impl fmt::Display for AppCredRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppCredRef::Id(id) => write!(f, "application credential {id}"),
            AppCredRef::Name { name, user } => write!(f, "application credential {name} of {user}"),
        }
    }
}

/// A token for a Swift account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftToken {
    pub token: Secret,
    /// The account's URL, e.g. `https://swift.example/v1/AUTH_<project id>`, without a
    /// trailing slash.
    pub storage_url: String,
    /// `None` when unknown (a pre-issued token, a v1 auth that does not say).
    pub expires_at: Option<jiff::Timestamp>,
}

impl SwiftToken {
    /// Whether the token should be renewed now: less than 5 minutes left, or expired.
    /// A token without a known expiry is renewed only when the server refuses it.
    pub fn needs_renewal(&self, now: jiff::Timestamp) -> bool {
        match self.expires_at {
            Some(expires) => expires.duration_since(now) < RENEW_BEFORE,
            None => false,
        }
    }
}

fn config_error(message: impl Into<String>) -> StorageError {
    StorageError::Auth(message.into())
}

// ---------------------------------------------------------------------------------------
// Reading the environment and clouds.yaml
// ---------------------------------------------------------------------------------------

/// Whether a setting lives under `auth:` in a cloud of clouds.yaml or at the cloud's top level.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Auth,
    Top,
}

/// The settings of Keystone authentication: the clouds.yaml key, where it lives there, and
/// the environment variables that give it (the first is the one named in messages).
const KEYS: &[(&str, Place, &[&str])] = &[
    ("auth_url", Place::Auth, &["OS_AUTH_URL"]),
    ("auth_type", Place::Top, &["OS_AUTH_TYPE"]),
    (
        "identity_api_version",
        Place::Top,
        &["OS_IDENTITY_API_VERSION"],
    ),
    ("username", Place::Auth, &["OS_USERNAME"]),
    ("user_id", Place::Auth, &["OS_USER_ID"]),
    ("password", Place::Auth, &["OS_PASSWORD"]),
    (
        "project_name",
        Place::Auth,
        &["OS_PROJECT_NAME", "OS_TENANT_NAME"],
    ),
    (
        "project_id",
        Place::Auth,
        &["OS_PROJECT_ID", "OS_TENANT_ID"],
    ),
    ("user_domain_name", Place::Auth, &["OS_USER_DOMAIN_NAME"]),
    ("user_domain_id", Place::Auth, &["OS_USER_DOMAIN_ID"]),
    (
        "project_domain_name",
        Place::Auth,
        &["OS_PROJECT_DOMAIN_NAME"],
    ),
    ("project_domain_id", Place::Auth, &["OS_PROJECT_DOMAIN_ID"]),
    ("domain_name", Place::Auth, &["OS_DOMAIN_NAME"]),
    ("domain_id", Place::Auth, &["OS_DOMAIN_ID"]),
    (
        "default_domain_name",
        Place::Auth,
        &["OS_DEFAULT_DOMAIN_NAME"],
    ),
    (
        "default_domain_id",
        Place::Auth,
        &["OS_DEFAULT_DOMAIN_ID", "OS_DEFAULT_DOMAIN"],
    ),
    (
        "application_credential_id",
        Place::Auth,
        &["OS_APPLICATION_CREDENTIAL_ID"],
    ),
    (
        "application_credential_name",
        Place::Auth,
        &["OS_APPLICATION_CREDENTIAL_NAME"],
    ),
    (
        "application_credential_secret",
        Place::Auth,
        &["OS_APPLICATION_CREDENTIAL_SECRET"],
    ),
    ("region_name", Place::Top, &["OS_REGION_NAME"]),
    (
        "interface",
        Place::Top,
        &["OS_INTERFACE", "OS_ENDPOINT_TYPE"],
    ),
];

/// Settings given as a pair (by name or by id): one from the environment replaces both of
/// the cloud's, so `OS_PROJECT_NAME` overrides a cloud's `project_id`.
const PAIRS: &[(&str, &str)] = &[
    ("username", "user_id"),
    ("project_name", "project_id"),
    ("user_domain_name", "user_domain_id"),
    ("project_domain_name", "project_domain_id"),
    ("domain_name", "domain_id"),
    ("default_domain_name", "default_domain_id"),
    ("application_credential_name", "application_credential_id"),
];

fn key_info(key: &str) -> (Place, &'static [&'static str]) {
    KEYS.iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, place, env)| (*place, *env))
        .expect("a known setting")
}

/// The cloud the settings came from, for messages.
struct CloudOrigin {
    name: String,
    path: PathBuf,
}

/// Keystone settings from a cloud of clouds.yaml and/or the `OS_*` variables.
struct Settings {
    values: BTreeMap<&'static str, String>,
    cloud: Option<CloudOrigin>,
}

impl Settings {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Where a setting is given: "OS_PASSWORD" or "OS_PASSWORD (or auth.password of cloud
    /// 'x' in /path/clouds.yaml)".
    fn source(&self, key: &str) -> String {
        let (place, env) = key_info(key);
        match &self.cloud {
            None => env[0].to_string(),
            Some(c) => {
                let path = match place {
                    Place::Auth => format!("auth.{key}"),
                    Place::Top => key.to_string(),
                };
                format!(
                    "{} (or {path} of cloud '{}' in {})",
                    env[0],
                    c.name,
                    c.path.display()
                )
            }
        }
    }

    /// Overlays the `OS_*` variables that are set.
    fn overlay_env(&mut self, get: &dyn Fn(&str) -> Option<String>) {
        let mut from_env = BTreeMap::new();
        for (key, _, env) in KEYS {
            if let Some(v) = env.iter().find_map(|name| get(name)) {
                from_env.insert(*key, v);
            }
        }
        for (a, b) in PAIRS {
            if from_env.contains_key(a) || from_env.contains_key(b) {
                self.values.remove(a);
                self.values.remove(b);
            }
        }
        self.values.extend(from_env);
    }
}

/// A non-empty, trimmed value of a variable.
fn non_empty(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl SwiftCredentials {
    /// From the environment, the way python-openstackclient and python-swiftclient read it,
    /// first match wins:
    ///
    /// 1. `OS_CLOUD`: that cloud of `clouds.yaml` (from `OS_CLIENT_CONFIG_FILE`, else
    ///    `./clouds.yaml`, `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`;
    ///    `.yml` and `.json` too), with `secure.yaml` (`OS_CLIENT_SECURE_FILE` or the same
    ///    folders) merged over it; `OS_*` variables override the cloud's values.
    /// 2. `OS_AUTH_URL` and the other `OS_*` variables of Keystone v3: `OS_AUTH_TYPE`
    ///    (`password`, `v3password`, `v3applicationcredential`; guessed from the variables
    ///    when unset), `OS_USERNAME`/`OS_USER_ID`, `OS_PASSWORD`, `OS_PROJECT_NAME`/
    ///    `OS_PROJECT_ID` (or `OS_TENANT_NAME`/`OS_TENANT_ID`), `OS_USER_DOMAIN_NAME`/`_ID`,
    ///    `OS_PROJECT_DOMAIN_NAME`/`_ID` (falling back to `OS_DOMAIN_NAME`/`_ID`, then
    ///    `OS_DEFAULT_DOMAIN_NAME`/`_ID`, then the domain with id `default`),
    ///    `OS_APPLICATION_CREDENTIAL_ID` (or `_NAME` with the user) and `_SECRET`,
    ///    `OS_REGION_NAME`, `OS_INTERFACE` (or `OS_ENDPOINT_TYPE`; `public` by default,
    ///    `publicURL` forms accepted).
    /// 3. `OS_STORAGE_URL` and `OS_AUTH_TOKEN`: a pre-issued token.
    /// 4. `ST_AUTH`, `ST_USER` and `ST_KEY`: Swift v1 auth.
    ///
    /// Empty variables count as unset. Errors name what is missing and what to set.
    pub fn from_env() -> Result<Self, StorageError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`SwiftCredentials::from_env`] with the variables read through `get` (for tests, or
    /// settings that do not come from the process environment). `HOME` and
    /// `XDG_CONFIG_HOME` are read through `get` too, to find `~/.config/openstack`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StorageError> {
        let get = |name: &str| non_empty(&get, name);
        let get: &dyn Fn(&str) -> Option<String> = &get;

        if let Some(cloud) = get("OS_CLOUD") {
            let mut settings = load_cloud(get, &cloud)?;
            settings.overlay_env(get);
            return keystone_from_settings(&settings).map(SwiftCredentials::Keystone);
        }
        if get("OS_AUTH_URL").is_some() {
            let mut settings = Settings {
                values: BTreeMap::new(),
                cloud: None,
            };
            settings.overlay_env(get);
            return keystone_from_settings(&settings).map(SwiftCredentials::Keystone);
        }
        match (get("OS_STORAGE_URL"), get("OS_AUTH_TOKEN")) {
            (Some(storage_url), Some(token)) => {
                return Ok(SwiftCredentials::Token {
                    storage_url: storage_url.trim_end_matches('/').to_string(),
                    token: Secret(token),
                });
            }
            (Some(_), None) => {
                return Err(config_error(
                    "OS_STORAGE_URL is set but OS_AUTH_TOKEN is not: set OS_AUTH_TOKEN to a \
                     token for that account (or unset OS_STORAGE_URL and give credentials)",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "OS_AUTH_TOKEN is set but neither OS_STORAGE_URL nor OS_AUTH_URL is: a \
                     pre-issued token needs OS_STORAGE_URL, the Swift account's URL \
                     (https://host/v1/AUTH_<project id>)",
                ));
            }
            (None, None) => {}
        }
        let st = ["ST_AUTH", "ST_USER", "ST_KEY"].map(get);
        if st.iter().any(Option::is_some) {
            let missing: Vec<&str> = ["ST_AUTH", "ST_USER", "ST_KEY"]
                .into_iter()
                .zip(&st)
                .filter(|(_, v)| v.is_none())
                .map(|(name, _)| name)
                .collect();
            if !missing.is_empty() {
                return Err(config_error(format!(
                    "Swift v1 auth needs ST_AUTH, ST_USER and ST_KEY; {} not set",
                    join_and(&missing, if missing.len() == 1 { "is" } else { "are" })
                )));
            }
            let [auth_url, user, key] = st.map(Option::unwrap_or_default);
            check_http_url("ST_AUTH", &auth_url)?;
            return Ok(SwiftCredentials::V1 {
                auth_url,
                user,
                key: Secret(key),
            });
        }

        let keystone_vars: Vec<&str> = KEYS
            .iter()
            .flat_map(|(_, _, env)| env.iter().copied())
            .filter(|name| *name != "OS_AUTH_URL" && get(name).is_some())
            .collect();
        let mut message = String::from("no Swift credentials in the environment");
        if !keystone_vars.is_empty() {
            message.push_str(&format!(
                " ({} set, but not OS_AUTH_URL, the Keystone v3 URL)",
                join_and(
                    &keystone_vars,
                    if keystone_vars.len() == 1 {
                        "is"
                    } else {
                        "are"
                    }
                )
            ));
        }
        message.push_str(
            ": set OS_CLOUD to a cloud of clouds.yaml; or OS_AUTH_URL with OS_USERNAME, \
             OS_PASSWORD, OS_PROJECT_NAME and OS_USER_DOMAIN_NAME/OS_PROJECT_DOMAIN_NAME \
             (Keystone v3 password), or with OS_AUTH_TYPE=v3applicationcredential, \
             OS_APPLICATION_CREDENTIAL_ID and OS_APPLICATION_CREDENTIAL_SECRET; or \
             OS_STORAGE_URL and OS_AUTH_TOKEN (a pre-issued token); or ST_AUTH, ST_USER and \
             ST_KEY (Swift v1 auth)",
        );
        Err(config_error(message))
    }
}

/// "A, B and C is/are".
fn join_and(names: &[&str], verb: &str) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} {verb}"),
        [rest @ .., last] => format!("{} and {last} {verb}", rest.join(", ")),
    }
}

fn check_http_url(source: &str, url: &str) -> Result<(), StorageError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(config_error(format!(
            "{source} must be an http:// or https:// URL, not '{url}'"
        )))
    }
}

/// The folders searched for clouds.yaml and secure.yaml, in order.
fn config_dirs(get: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd);
    }
    if let Some(xdg) = get("XDG_CONFIG_HOME") {
        dirs.push(Path::new(&xdg).join("openstack"));
    } else if let Some(home) = get("HOME") {
        dirs.push(Path::new(&home).join(".config/openstack"));
    }
    dirs.push(PathBuf::from("/etc/openstack"));
    dirs
}

/// The first of the candidate files that exists; `override_var` names a file that must.
fn find_config_file(
    get: &dyn Fn(&str) -> Option<String>,
    override_var: &str,
    stem: &str,
) -> Result<(Option<PathBuf>, Vec<PathBuf>), StorageError> {
    if let Some(path) = get(override_var) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(config_error(format!(
                "{override_var} names {}, which is not a readable file",
                path.display()
            )));
        }
        return Ok((Some(path), Vec::new()));
    }
    let mut searched = Vec::new();
    for dir in config_dirs(get) {
        for ext in ["yaml", "yml", "json"] {
            let path = dir.join(format!("{stem}.{ext}"));
            if path.is_file() {
                return Ok((Some(path), searched));
            }
            searched.push(path);
        }
    }
    Ok((None, searched))
}

/// Parses a YAML (or JSON) file; errors give the position, never a snippet of the file
/// (it holds passwords).
fn read_yaml(path: &Path) -> Result<serde_json::Value, StorageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StorageError::from_io(&path.display().to_string(), e))?;
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<serde_json::Value>(&text, options).map_err(|e| {
        let at = match e.location() {
            Some(l) => format!(" at line {} column {}", l.line(), l.column()),
            None => String::new(),
        };
        config_error(format!("{} is not valid YAML{at}", path.display()))
    })
}

/// Merges `over` into `base`, maps key by key.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

/// A scalar of clouds.yaml as a string (YAML may give an id as a number).
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn load_cloud(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Settings, StorageError> {
    let (path, searched) = find_config_file(get, "OS_CLIENT_CONFIG_FILE", "clouds")?;
    let Some(path) = path else {
        let list: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
        return Err(config_error(format!(
            "OS_CLOUD is '{name}' but there is no clouds.yaml (looked for {}): set \
             OS_CLIENT_CONFIG_FILE to the file, or unset OS_CLOUD and use OS_AUTH_URL etc.",
            list.join(", ")
        )));
    };
    let mut doc = read_yaml(&path)?;
    if let (Some(secure), _) = find_config_file(get, "OS_CLIENT_SECURE_FILE", "secure")? {
        let secure_doc = read_yaml(&secure)?;
        merge(&mut doc, secure_doc);
    }
    let clouds = doc.get("clouds").and_then(|c| c.as_object());
    let Some(cloud) = clouds.and_then(|c| c.get(name)) else {
        let mut names: Vec<&str> = clouds
            .map(|c| c.keys().map(String::as_str).collect())
            .unwrap_or_default();
        names.sort_unstable();
        return Err(config_error(format!(
            "OS_CLOUD is '{name}' but {} has no such cloud (it has: {})",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let Some(cloud) = cloud.as_object() else {
        return Err(config_error(format!(
            "cloud '{name}' in {} is not a mapping",
            path.display()
        )));
    };
    // openstacksdk accepts `project-name` as well as `project_name`.
    let normalise = |m: &serde_json::Map<String, serde_json::Value>| {
        m.iter()
            .map(|(k, v)| (k.replace('-', "_"), v.clone()))
            .collect::<BTreeMap<String, serde_json::Value>>()
    };
    let top = normalise(cloud);
    let auth = top
        .get("auth")
        .and_then(|a| a.as_object())
        .map(normalise)
        .unwrap_or_default();

    let mut values = BTreeMap::new();
    for (key, place, _) in KEYS {
        let v = match place {
            Place::Auth => auth.get(*key).or_else(|| top.get(*key)),
            Place::Top => top.get(*key).or_else(|| auth.get(*key)),
        };
        if let Some(v) = v.and_then(scalar) {
            values.insert(*key, v);
        }
    }
    // Old spellings.
    for (old, new) in [
        ("tenant_name", "project_name"),
        ("tenant_id", "project_id"),
        ("endpoint_type", "interface"),
    ] {
        if !values.contains_key(new)
            && let Some(v) = auth.get(old).or_else(|| top.get(old)).and_then(scalar)
        {
            values.insert(new, v);
        }
    }
    // `regions: [a, b]` (strings or `{name: a}`): the first, as openstacksdk does.
    if !values.contains_key("region_name")
        && let Some(first) = top
            .get("regions")
            .and_then(|r| r.as_array())
            .and_then(|r| r.first())
        && let Some(region) = scalar(first).or_else(|| first.get("name").and_then(scalar))
    {
        values.insert("region_name", region);
    }
    if !values.contains_key("auth_url")
        && (top.contains_key("profile") || top.contains_key("cloud"))
    {
        return Err(config_error(format!(
            "cloud '{name}' in {} uses a vendor profile, which Lifeboat does not read: \
             give auth.auth_url in the cloud (or set OS_AUTH_URL)",
            path.display()
        )));
    }
    Ok(Settings {
        values,
        cloud: Some(CloudOrigin {
            name: name.to_string(),
            path,
        }),
    })
}

/// `https://host:5000`, `https://host:5000/v3/` → `https://host:5000/v3`.
fn normalise_auth_url(source: &str, url: &str) -> Result<String, StorageError> {
    check_http_url(source, url)?;
    let url = url.trim().trim_end_matches('/');
    let last = url.rsplit('/').next().unwrap_or("");
    if last == "v3" {
        return Ok(url.to_string());
    }
    if last == "v2.0" || last == "v2" {
        return Err(config_error(format!(
            "{source} is '{url}', the Keystone v2 API, which is gone since OpenStack Queens: \
             use the v3 URL (usually the same ending in /v3)"
        )));
    }
    Ok(format!("{url}/v3"))
}

fn keystone_from_settings(s: &Settings) -> Result<KeystoneAuth, StorageError> {
    let Some(auth_url) = s.get("auth_url") else {
        return Err(config_error(format!(
            "no Keystone URL: set {}",
            s.source("auth_url")
        )));
    };
    let auth_url = normalise_auth_url(&s.source("auth_url"), auth_url)?;
    if let Some(v) = s.get("identity_api_version")
        && !v.starts_with('3')
    {
        return Err(config_error(format!(
            "identity API version '{v}' from {} is not supported: Lifeboat speaks Keystone v3 only",
            s.source("identity_api_version")
        )));
    }
    let interface = match s.get("interface") {
        None => Interface::Public,
        Some(v) => Interface::parse(v).ok_or_else(|| {
            config_error(format!(
                "interface '{v}' from {} is not one of public, internal, admin",
                s.source("interface")
            ))
        })?,
    };
    let region = s.get("region_name").map(str::to_string);

    let has_app_cred = [
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret",
    ]
    .iter()
    .any(|k| s.get(k).is_some());
    let app_cred = match s
        .get("auth_type")
        .map(|t| t.to_ascii_lowercase().replace(['-', '_'], ""))
    {
        None => has_app_cred,
        Some(t) if t == "password" || t == "v3password" => false,
        Some(t) if t == "v3applicationcredential" || t == "applicationcredential" => true,
        Some(_) => {
            return Err(config_error(format!(
                "auth type '{}' from {} is not supported: use password, v3password or \
                 v3applicationcredential (or a pre-issued token with OS_STORAGE_URL and \
                 OS_AUTH_TOKEN)",
                s.get("auth_type").unwrap_or_default(),
                s.source("auth_type")
            )));
        }
    };

    let method = if app_cred {
        let Some(secret) = s.get("application_credential_secret") else {
            return Err(config_error(format!(
                "application credential without a secret: set {}",
                s.source("application_credential_secret")
            )));
        };
        let credential = if let Some(id) = s.get("application_credential_id") {
            AppCredRef::Id(id.to_string())
        } else if let Some(name) = s.get("application_credential_name") {
            let Some(user) = user_ref(s) else {
                return Err(config_error(format!(
                    "application credential '{name}' is given by name, which also needs its \
                     user: set {} (with {}), or {} (or give {} instead)",
                    s.source("username"),
                    s.source("user_domain_name"),
                    s.source("user_id"),
                    s.source("application_credential_id")
                )));
            };
            AppCredRef::Name {
                name: name.to_string(),
                user,
            }
        } else {
            return Err(config_error(format!(
                "application credential without an id: set {} (or {} with the user)",
                s.source("application_credential_id"),
                s.source("application_credential_name")
            )));
        };
        KeystoneMethod::ApplicationCredential {
            credential,
            secret: Secret::new(secret),
        }
    } else {
        let Some(user) = user_ref(s) else {
            return Err(config_error(format!(
                "no Keystone user: set {} (with {}), or {}; or use an application credential \
                 ({} and {})",
                s.source("username"),
                s.source("user_domain_name"),
                s.source("user_id"),
                s.source("application_credential_id"),
                s.source("application_credential_secret")
            )));
        };
        let Some(password) = s.get("password") else {
            return Err(config_error(format!(
                "no password for Keystone {user}: set {}",
                s.source("password")
            )));
        };
        let project = if let Some(id) = s.get("project_id") {
            ProjectRef::Id(id.to_string())
        } else if let Some(name) = s.get("project_name") {
            ProjectRef::Name {
                name: name.to_string(),
                domain: domain_ref(s, "project_domain_id", "project_domain_name"),
            }
        } else {
            return Err(config_error(format!(
                "no Keystone project: set {} (with {}) or {}; Swift accounts belong to projects",
                s.source("project_name"),
                s.source("project_domain_name"),
                s.source("project_id")
            )));
        };
        KeystoneMethod::Password {
            user,
            password: Secret::new(password),
            project,
        }
    };
    Ok(KeystoneAuth {
        auth_url,
        method,
        region,
        interface,
    })
}

fn user_ref(s: &Settings) -> Option<UserRef> {
    if let Some(id) = s.get("user_id") {
        return Some(UserRef::Id(id.to_string()));
    }
    let name = s.get("username")?;
    Some(UserRef::Name {
        name: name.to_string(),
        domain: domain_ref(s, "user_domain_id", "user_domain_name"),
    })
}

/// The specific domain setting, else `OS_DOMAIN_*`, else `OS_DEFAULT_DOMAIN_*`, else the
/// domain with id `default`.
fn domain_ref(s: &Settings, id_key: &str, name_key: &str) -> DomainRef {
    for (id, name) in [
        (id_key, name_key),
        ("domain_id", "domain_name"),
        ("default_domain_id", "default_domain_name"),
    ] {
        if let Some(id) = s.get(id) {
            return DomainRef::Id(id.to_string());
        }
        if let Some(name) = s.get(name) {
            return DomainRef::Name(name.to_string());
        }
    }
    DomainRef::Id("default".to_string())
}

// ---------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------

/// Gets a token and the storage URL. Errors: [`StorageError::Auth`] when the credentials are
/// refused, `Remote { retryable: true }` for connection failures, time-outs and 5xx answers,
/// `Remote { retryable: false }` for a wrong URL or a catalog without the wanted endpoint.
pub async fn authenticate(
    client: &reqwest::Client,
    creds: &SwiftCredentials,
) -> Result<SwiftToken, StorageError> {
    match creds {
        SwiftCredentials::Keystone(k) => keystone_token(client, k).await,
        SwiftCredentials::V1 {
            auth_url,
            user,
            key,
        } => v1_token(client, auth_url, user, key).await,
        SwiftCredentials::Token { storage_url, token } => Ok(SwiftToken {
            token: token.clone(),
            storage_url: storage_url.trim_end_matches('/').to_string(),
            expires_at: None,
        }),
    }
}

fn domain_json(d: &DomainRef) -> serde_json::Value {
    match d {
        DomainRef::Id(id) => serde_json::json!({ "id": id }),
        DomainRef::Name(name) => serde_json::json!({ "name": name }),
    }
}

fn user_json(u: &UserRef) -> serde_json::Value {
    match u {
        UserRef::Id(id) => serde_json::json!({ "id": id }),
        UserRef::Name { name, domain } => {
            serde_json::json!({ "name": name, "domain": domain_json(domain) })
        }
    }
}

/// The body of `POST /v3/auth/tokens`. Holds the secret: never put it in a message.
fn keystone_request_body(method: &KeystoneMethod) -> serde_json::Value {
    match method {
        KeystoneMethod::Password {
            user,
            password,
            project,
        } => {
            let mut user = user_json(user);
            user["password"] = password.expose().into();
            let project = match project {
                ProjectRef::Id(id) => serde_json::json!({ "id": id }),
                ProjectRef::Name { name, domain } => {
                    serde_json::json!({ "name": name, "domain": domain_json(domain) })
                }
            };
            serde_json::json!({ "auth": {
                "identity": { "methods": ["password"], "password": { "user": user } },
                "scope": { "project": project },
            }})
        }
        KeystoneMethod::ApplicationCredential { credential, secret } => {
            let mut cred = match credential {
                AppCredRef::Id(id) => serde_json::json!({ "id": id }),
                AppCredRef::Name { name, user } => {
                    serde_json::json!({ "name": name, "user": user_json(user) })
                }
            };
            cred["secret"] = secret.expose().into();
            serde_json::json!({ "auth": { "identity": {
                "methods": ["application_credential"],
                "application_credential": cred,
            }}})
        }
    }
}

/// Who asked, for messages: "user lifeboat (domain Default) in project lifeboat (domain
/// Default)" or "application credential <id>".
fn who(method: &KeystoneMethod) -> String {
    match method {
        KeystoneMethod::Password { user, project, .. } => format!("{user} in {project}"),
        KeystoneMethod::ApplicationCredential { credential, .. } => credential.to_string(),
    }
}

/// A transport failure: retryable unless the request could not even be built.
fn transport_error(what: String, e: reqwest::Error) -> StorageError {
    let retryable = !e.is_builder();
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    if e.is_timeout() {
        message = format!("no answer within {} s ({message})", AUTH_TIMEOUT.as_secs());
    }
    StorageError::Remote {
        what,
        message,
        retryable,
    }
}

/// The `error.message` of a Keystone error body, shortened; never the request.
fn keystone_error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = v.get("error")?.get("message")?.as_str()?.trim();
    if m.is_empty() {
        return None;
    }
    let mut m: String = m.chars().take(300).collect();
    if m.len() < v["error"]["message"].as_str().unwrap_or("").trim().len() {
        m.push('…');
    }
    Some(m)
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

#[derive(Deserialize)]
struct TokenResponse {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: Option<String>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Deserialize)]
struct CatalogEndpoint {
    interface: Option<String>,
    region_id: Option<String>,
    region: Option<String>,
    url: String,
}

impl CatalogEndpoint {
    fn region(&self) -> Option<&str> {
        self.region_id.as_deref().or(self.region.as_deref())
    }
}

async fn keystone_token(
    client: &reqwest::Client,
    k: &KeystoneAuth,
) -> Result<SwiftToken, StorageError> {
    let url = format!("{}/auth/tokens", k.auth_url);
    let what = format!("Keystone at {}", k.auth_url);
    let response = client
        .post(&url)
        .timeout(AUTH_TIMEOUT)
        .header(reqwest::header::ACCEPT, "application/json")
        .json(&keystone_request_body(&k.method))
        .send()
        .await
        .map_err(|e| transport_error(what.clone(), e))?;
    let status = response.status();
    let subject_token = response
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(Secret::new);
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(what.clone(), e))?;
    let said = keystone_error_message(&body)
        .map(|m| format!(" (Keystone: {m})"))
        .unwrap_or_default();

    if !status.is_success() {
        let who = who(&k.method);
        let check = match &k.method {
            KeystoneMethod::Password { .. } => {
                "check OS_PASSWORD, the user and project names and their domains, and that the \
                 user has a role on the project"
            }
            KeystoneMethod::ApplicationCredential { .. } => {
                "check the application credential (OS_APPLICATION_CREDENTIAL_ID / _SECRET): it \
                 may be wrong, expired or deleted"
            }
        };
        return Err(match status {
            StatusCode::UNAUTHORIZED => StorageError::Auth(format!(
                "Keystone at {} refused the credentials of {who}: {check}{said}",
                k.auth_url
            )),
            StatusCode::FORBIDDEN => StorageError::Auth(format!(
                "Keystone at {} forbade a token for {who} (403){said}",
                k.auth_url
            )),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => StorageError::Remote {
                what,
                message: format!(
                    "no Keystone v3 identity API there ({status} for POST {url}): check \
                     OS_AUTH_URL, it usually ends in :5000/v3 or /identity/v3"
                ),
                retryable: false,
            },
            s if is_retryable_status(s) => StorageError::Remote {
                what,
                message: format!("Keystone answered {s}{said}"),
                retryable: true,
            },
            s => StorageError::Remote {
                what,
                message: format!("Keystone answered {s} for {who}{said}"),
                retryable: false,
            },
        });
    }

    let Some(token) = subject_token else {
        return Err(StorageError::Remote {
            what,
            message: format!("Keystone answered {status} without an X-Subject-Token header"),
            retryable: false,
        });
    };
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| StorageError::Remote {
            what: what.clone(),
            message: format!("Keystone's answer is not a v3 token ({e})"),
            retryable: false,
        })?;
    let expires_at = parsed
        .token
        .expires_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let storage_url = choose_endpoint(&parsed.token.catalog, k.interface, k.region.as_deref())
        .map_err(|message| StorageError::Remote {
            what,
            message,
            retryable: false,
        })?;
    Ok(SwiftToken {
        token,
        storage_url,
        expires_at,
    })
}

/// The URL of the `object-store` endpoint of the wanted interface and region; the error is a
/// message naming what the catalog has.
fn choose_endpoint(
    catalog: &[CatalogService],
    interface: Interface,
    region: Option<&str>,
) -> Result<String, String> {
    fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
        let mut v: Vec<&str> = items.collect();
        v.sort_unstable();
        v.dedup();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    }
    if catalog.is_empty() {
        return Err(
            "the token's service catalog is empty, so there is no object-store endpoint (is \
             the token scoped to a project, and is Swift registered in this cloud?)"
                .to_string(),
        );
    }
    let endpoints: Vec<&CatalogEndpoint> = catalog
        .iter()
        .filter(|s| s.kind == "object-store")
        .flat_map(|s| &s.endpoints)
        .collect();
    if endpoints.is_empty() {
        return Err(format!(
            "the service catalog has no object-store (Swift) service; it has: {}. If this \
             cloud offers an S3 API instead, use an S3 repository",
            list(catalog.iter().map(|s| s.kind.as_str()))
        ));
    }
    let of_interface: Vec<&CatalogEndpoint> = endpoints
        .iter()
        .copied()
        .filter(|e| e.interface.as_deref().and_then(Interface::parse) == Some(interface))
        .collect();
    if of_interface.is_empty() {
        return Err(format!(
            "the object-store service has no {interface} endpoint (it has: {}): set \
             OS_INTERFACE to one of those",
            list(endpoints.iter().filter_map(|e| e.interface.as_deref()))
        ));
    }
    let regions = || list(of_interface.iter().filter_map(|e| e.region()));
    let chosen = match region {
        Some(r) => of_interface
            .iter()
            .find(|e| e.region() == Some(r))
            .ok_or_else(|| {
                format!(
                    "the object-store service has no {interface} endpoint in region '{r}'; its \
                 regions are: {}. Check OS_REGION_NAME",
                    regions()
                )
            })?,
        None => {
            let first = of_interface[0];
            if of_interface.iter().any(|e| e.region() != first.region()) {
                return Err(format!(
                    "the object-store service has {interface} endpoints in several regions \
                     ({}): set OS_REGION_NAME to one of them",
                    regions()
                ));
            }
            first
        }
    };
    Ok(chosen.url.trim_end_matches('/').to_string())
}

async fn v1_token(
    client: &reqwest::Client,
    auth_url: &str,
    user: &str,
    key: &Secret,
) -> Result<SwiftToken, StorageError> {
    let what = format!("Swift auth at {auth_url}");
    let header = |name: &str, value: &str| {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            config_error(format!(
                "{name} holds characters that cannot be sent in an HTTP header"
            ))
        })?;
        v.set_sensitive(true);
        Ok::<_, StorageError>(v)
    };
    let response = client
        .get(auth_url)
        .timeout(AUTH_TIMEOUT)
        .header("X-Auth-User", header("ST_USER", user)?)
        .header("X-Auth-Key", header("ST_KEY", key.expose())?)
        .send()
        .await
        .map_err(|e| transport_error(what.clone(), e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StorageError::Auth(format!(
                "Swift auth at {auth_url} refused the key of user {user} ({status}): check \
                 ST_KEY and ST_USER (account:user for tempauth)"
            )),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => StorageError::Remote {
                what,
                message: format!(
                    "no Swift v1 auth there ({status}): check ST_AUTH, it usually ends in \
                     /auth/v1.0"
                ),
                retryable: false,
            },
            s => StorageError::Remote {
                what,
                message: format!("Swift answered {s}"),
                retryable: is_retryable_status(s),
            },
        });
    }
    let headers = response.headers();
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let token = text("x-auth-token").or_else(|| text("x-storage-token"));
    let storage_url = text("x-storage-url");
    let (Some(token), Some(storage_url)) = (token, storage_url) else {
        return Err(StorageError::Remote {
            what,
            message: format!(
                "Swift answered {status} without X-Auth-Token and X-Storage-Url headers: is \
                 ST_AUTH a Swift v1 auth URL?"
            ),
            retryable: false,
        });
    };
    let expires_at = text("x-auth-token-expires")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| {
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(s as i64))
                .ok()
        });
    Ok(SwiftToken {
        token: Secret(token),
        storage_url: storage_url.trim_end_matches('/').to_string(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn creds(pairs: &[(&str, &str)]) -> SwiftCredentials {
        SwiftCredentials::from_lookup(lookup(pairs)).expect("credentials")
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        match SwiftCredentials::from_lookup(lookup(pairs)) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => {
                assert!(!e.is_retryable(), "{e}");
                e.to_string()
            }
        }
    }

    fn keystone(c: SwiftCredentials) -> KeystoneAuth {
        match c {
            SwiftCredentials::Keystone(k) => k,
            other => panic!("expected Keystone, got {other:?}"),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn name(n: &str, d: DomainRef) -> UserRef {
        UserRef::Name {
            name: n.into(),
            domain: d,
        }
    }

    #[test]
    fn secret_prints_stars() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s} {s:#?}"), "*** *** ***");
        assert_eq!(s.expose(), "hunter2");
        let t = SwiftToken {
            token: "tok-secret".into(),
            storage_url: "http://x/v1/AUTH_a".into(),
            expires_at: None,
        };
        assert!(!format!("{t:?}").contains("tok-secret"));
    }

    #[test]
    fn password_by_names() {
        let c = creds(&[
            ("OS_AUTH_URL", "https://keystone.example:5000/"),
            ("OS_USERNAME", "alice"),
            ("OS_PASSWORD", "pa55-secret"),
            ("OS_PROJECT_NAME", "backups"),
            ("OS_USER_DOMAIN_NAME", "Users"),
            ("OS_PROJECT_DOMAIN_ID", "d42"),
            ("OS_REGION_NAME", "RegionOne"),
            ("OS_INTERFACE", "internalURL"),
            ("OS_STORAGE_URL", "http://ignored"),
            ("ST_AUTH", "http://ignored"),
        ]);
        assert!(!format!("{c:?}").contains("pa55-secret"), "{c:?}");
        assert_eq!(
            keystone(c),
            KeystoneAuth {
                auth_url: "https://keystone.example:5000/v3".into(),
                method: KeystoneMethod::Password {
                    user: name("alice", DomainRef::Name("Users".into())),
                    password: "pa55-secret".into(),
                    project: ProjectRef::Name {
                        name: "backups".into(),
                        domain: DomainRef::Id("d42".into()),
                    },
                },
                region: Some("RegionOne".into()),
                interface: Interface::Internal,
            }
        );
    }

    #[test]
    fn password_ids_tenant_and_domain_fallbacks() {
        let k = keystone(creds(&[
            ("OS_AUTH_URL", "http://k/identity/v3/"),
            ("OS_AUTH_TYPE", "v3password"),
            ("OS_USER_ID", "u1"),
            ("OS_USERNAME", "ignored-when-id-given"),
            ("OS_PASSWORD", "p"),
            ("OS_TENANT_NAME", "t"),
            ("OS_DOMAIN_NAME", "Dom"),
            ("OS_IDENTITY_API_VERSION", "3"),
        ]));
        assert_eq!(k.auth_url, "http://k/identity/v3");
        assert_eq!(k.interface, Interface::Public);
        assert_eq!(k.region, None);
        let KeystoneMethod::Password { user, project, .. } = k.method else {
            panic!()
        };
        assert_eq!(user, UserRef::Id("u1".into()));
        assert_eq!(
            project,
            ProjectRef::Name {
                name: "t".into(),
                domain: DomainRef::Name("Dom".into())
            }
        );
        // No domain at all: the domain with id "default"; OS_PROJECT_NAME wins over the
        // tenant; empty variables count as unset.
        let k = keystone(creds(&[
            ("OS_AUTH_URL", "http://k:5000"),
            ("OS_USERNAME", "bob"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_NAME", "p1"),
            ("OS_TENANT_NAME", "t"),
            ("OS_PROJECT_ID", ""),
            ("OS_INTERFACE", "publicURL"),
        ]));
        let KeystoneMethod::Password { user, project, .. } = k.method else {
            panic!()
        };
        assert_eq!(user, name("bob", DomainRef::Id("default".into())));
        assert_eq!(
            project,
            ProjectRef::Name {
                name: "p1".into(),
                domain: DomainRef::Id("default".into())
            }
        );
        let k = keystone(creds(&[
            ("OS_AUTH_URL", "http://k:5000"),
            ("OS_USERNAME", "bob"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_ID", "pid"),
            ("OS_PROJECT_NAME", "p1"),
        ]));
        let KeystoneMethod::Password { project, .. } = k.method else {
            panic!()
        };
        assert_eq!(project, ProjectRef::Id("pid".into()));
    }

    #[test]
    fn application_credentials() {
        // Inferred from the variables; project variables are ignored (no scope).
        let c = creds(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac1"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "app-secret-xyz"),
            ("OS_PROJECT_NAME", "ignored"),
            ("OS_INTERFACE", "admin"),
        ]);
        assert!(!format!("{c:?}").contains("app-secret-xyz"));
        let k = keystone(c);
        assert_eq!(k.interface, Interface::Admin);
        assert_eq!(
            k.method,
            KeystoneMethod::ApplicationCredential {
                credential: AppCredRef::Id("ac1".into()),
                secret: "app-secret-xyz".into(),
            }
        );
        let body = keystone_request_body(&k.method);
        assert!(body["auth"].get("scope").is_none());
        assert_eq!(
            body["auth"]["identity"]["methods"][0],
            "application_credential"
        );
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["secret"],
            "app-secret-xyz"
        );
        // By name, with its user.
        let k = keystone(creds(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_APPLICATION_CREDENTIAL_NAME", "nightly"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
            ("OS_USERNAME", "alice"),
            ("OS_USER_DOMAIN_ID", "default"),
            ("OS_PASSWORD", "unused"),
        ]));
        let expected = AppCredRef::Name {
            name: "nightly".into(),
            user: name("alice", DomainRef::Id("default".into())),
        };
        assert!(
            matches!(&k.method, KeystoneMethod::ApplicationCredential { credential, .. } if *credential == expected)
        );
        let body = keystone_request_body(&k.method);
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["user"],
            serde_json::json!({"name": "alice", "domain": {"id": "default"}})
        );
        // OS_AUTH_TYPE=password wins over application-credential variables.
        let k = keystone(creds(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_AUTH_TYPE", "password"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac1"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_ID", "pid"),
        ]));
        assert!(matches!(k.method, KeystoneMethod::Password { .. }));
    }

    #[test]
    fn password_request_body() {
        let m = KeystoneMethod::Password {
            user: name("alice", DomainRef::Name("Default".into())),
            password: "pw".into(),
            project: ProjectRef::Name {
                name: "proj".into(),
                domain: DomainRef::Id("default".into()),
            },
        };
        assert_eq!(
            keystone_request_body(&m),
            serde_json::json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "alice", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "proj", "domain": {"id": "default"}}},
            }})
        );
        assert_eq!(
            who(&m),
            "user alice (domain Default) in project proj (domain id default)"
        );
    }

    #[test]
    fn missing_and_wrong_variables_are_named() {
        let e = err(&[]);
        for v in [
            "OS_CLOUD",
            "OS_AUTH_URL",
            "OS_STORAGE_URL",
            "OS_AUTH_TOKEN",
            "ST_AUTH",
        ] {
            assert!(e.contains(v), "{e}");
        }
        let e = err(&[("OS_USERNAME", "u"), ("OS_PASSWORD", "secret-pw")]);
        assert!(e.contains("OS_USERNAME and OS_PASSWORD are set"), "{e}");
        assert!(e.contains("not OS_AUTH_URL"), "{e}");
        assert!(!e.contains("secret-pw"), "{e}");

        let url = ("OS_AUTH_URL", "http://k:5000/v3");
        let e = err(&[url]);
        assert!(e.contains("OS_USERNAME") && e.contains("OS_USER_ID"), "{e}");
        let e = err(&[url, ("OS_USERNAME", "u")]);
        assert!(e.contains("set OS_PASSWORD"), "{e}");
        let e = err(&[url, ("OS_USERNAME", "u"), ("OS_PASSWORD", "secret-pw")]);
        assert!(
            e.contains("OS_PROJECT_NAME") && e.contains("OS_PROJECT_ID"),
            "{e}"
        );
        assert!(!e.contains("secret-pw"), "{e}");
        let e = err(&[url, ("OS_AUTH_TYPE", "v3applicationcredential")]);
        assert!(e.contains("OS_APPLICATION_CREDENTIAL_SECRET"), "{e}");
        let e = err(&[url, ("OS_APPLICATION_CREDENTIAL_SECRET", "s")]);
        assert!(e.contains("OS_APPLICATION_CREDENTIAL_ID"), "{e}");
        let e = err(&[
            url,
            ("OS_APPLICATION_CREDENTIAL_NAME", "n"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
        ]);
        assert!(
            e.contains("needs its user") && e.contains("OS_USERNAME"),
            "{e}"
        );
        let e = err(&[url, ("OS_AUTH_TYPE", "v3oidcpassword")]);
        assert!(
            e.contains("v3oidcpassword") && e.contains("v3applicationcredential"),
            "{e}"
        );
        let e = err(&[url, ("OS_INTERFACE", "external")]);
        assert!(
            e.contains("OS_INTERFACE") && e.contains("public, internal, admin"),
            "{e}"
        );
        let e = err(&[url, ("OS_IDENTITY_API_VERSION", "2")]);
        assert!(e.contains("v3 only"), "{e}");
        let e = err(&[("OS_AUTH_URL", "http://k:5000/v2.0/")]);
        assert!(e.contains("v2") && e.contains("OS_AUTH_URL"), "{e}");
        let e = err(&[("OS_AUTH_URL", "k:5000")]);
        assert!(e.contains("http://"), "{e}");

        let e = err(&[("OS_STORAGE_URL", "http://s/v1/AUTH_a")]);
        assert!(e.contains("OS_AUTH_TOKEN"), "{e}");
        let e = err(&[("OS_AUTH_TOKEN", "tok-secret")]);
        assert!(
            e.contains("OS_STORAGE_URL") && !e.contains("tok-secret"),
            "{e}"
        );
        let e = err(&[("ST_AUTH", "http://s/auth/v1.0")]);
        assert!(e.contains("ST_USER and ST_KEY are not set"), "{e}");
        let e = err(&[("ST_USER", "a:b"), ("ST_KEY", "k")]);
        assert!(e.contains("ST_AUTH is not set"), "{e}");
    }

    #[test]
    fn token_and_v1_from_env() {
        let c = creds(&[
            ("OS_STORAGE_URL", "http://s/v1/AUTH_a/"),
            ("OS_AUTH_TOKEN", "tok-secret"),
            ("ST_AUTH", "http://ignored"),
        ]);
        assert!(!format!("{c:?}").contains("tok-secret"));
        assert_eq!(
            c,
            SwiftCredentials::Token {
                storage_url: "http://s/v1/AUTH_a".into(),
                token: "tok-secret".into()
            }
        );
        let t = rt()
            .block_on(authenticate(&reqwest::Client::new(), &c))
            .unwrap();
        assert_eq!(t.storage_url, "http://s/v1/AUTH_a");
        assert_eq!(t.token.expose(), "tok-secret");
        assert_eq!(t.expires_at, None);
        assert!(!t.needs_renewal(jiff::Timestamp::now()));

        let c = creds(&[
            ("ST_AUTH", "http://s/auth/v1.0"),
            ("ST_USER", "test:tester"),
            ("ST_KEY", "st-key-secret"),
        ]);
        assert!(!format!("{c:?}").contains("st-key-secret"));
        assert_eq!(
            c,
            SwiftCredentials::V1 {
                auth_url: "http://s/auth/v1.0".into(),
                user: "test:tester".into(),
                key: "st-key-secret".into()
            }
        );
    }

    const CLOUDS: &str = r#"
# a comment
clouds:
  main:
    auth_type: password
    auth:
      auth_url: http://keystone.example:5000
      username: alice
      project-name: backups
      user_domain_name: Default
      project_domain_name: Default
    identity_api_version: 3
    region_name: RegionOne
    interface: internal
  app:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://keystone.example:5000/v3/
      application_credential_id: 1234
    regions:
      - name: RegionTwo
      - RegionOne
"#;

    const SECURE: &str = r#"
clouds:
  main:
    auth:
      password: "clouds-pw-secret"
  app:
    auth:
      application_credential_secret: app-secret-xyz
"#;

    fn clouds_dir() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("my-clouds.yaml");
        let secure = dir.path().join("my-secure.yaml");
        std::fs::write(&clouds, CLOUDS).unwrap();
        std::fs::write(&secure, SECURE).unwrap();
        let c = clouds.display().to_string();
        let s = secure.display().to_string();
        (dir, c, s)
    }

    #[test]
    fn clouds_yaml_with_secure_yaml() {
        let (_dir, clouds, secure) = clouds_dir();
        let files = [
            ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
            ("OS_CLIENT_SECURE_FILE", secure.as_str()),
        ];
        let c = creds(&[files[0], files[1], ("OS_CLOUD", "main")]);
        assert!(!format!("{c:?}").contains("clouds-pw-secret"));
        assert_eq!(
            keystone(c),
            KeystoneAuth {
                auth_url: "http://keystone.example:5000/v3".into(),
                method: KeystoneMethod::Password {
                    user: name("alice", DomainRef::Name("Default".into())),
                    password: "clouds-pw-secret".into(),
                    project: ProjectRef::Name {
                        name: "backups".into(),
                        domain: DomainRef::Name("Default".into()),
                    },
                },
                region: Some("RegionOne".into()),
                interface: Interface::Internal,
            }
        );
        let k = keystone(creds(&[files[0], files[1], ("OS_CLOUD", "app")]));
        assert_eq!(k.auth_url, "http://keystone.example:5000/v3");
        assert_eq!(k.region.as_deref(), Some("RegionTwo"));
        assert_eq!(k.interface, Interface::Public);
        assert_eq!(
            k.method,
            KeystoneMethod::ApplicationCredential {
                credential: AppCredRef::Id("1234".into()),
                secret: "app-secret-xyz".into()
            }
        );
    }

    #[test]
    fn os_variables_override_the_cloud() {
        let (_dir, clouds, secure) = clouds_dir();
        let k = keystone(creds(&[
            ("OS_CLIENT_CONFIG_FILE", &clouds),
            ("OS_CLIENT_SECURE_FILE", &secure),
            ("OS_CLOUD", "main"),
            ("OS_PASSWORD", "env-pw"),
            ("OS_PROJECT_ID", "pid"),
            ("OS_REGION_NAME", "RegionThree"),
            ("OS_INTERFACE", "public"),
            ("OS_AUTH_URL", "https://other/v3"),
        ]));
        assert_eq!(k.auth_url, "https://other/v3");
        assert_eq!(k.region.as_deref(), Some("RegionThree"));
        assert_eq!(k.interface, Interface::Public);
        let KeystoneMethod::Password {
            user,
            password,
            project,
        } = k.method
        else {
            panic!()
        };
        assert_eq!(user, name("alice", DomainRef::Name("Default".into())));
        assert_eq!(password.expose(), "env-pw");
        // OS_PROJECT_ID replaces the cloud's project name rather than adding to it.
        assert_eq!(project, ProjectRef::Id("pid".into()));
    }

    #[test]
    fn clouds_yaml_errors() {
        let (dir, clouds, _secure) = clouds_dir();
        // Without secure.yaml, the password is missing: the message names both places.
        let e = err(&[("OS_CLIENT_CONFIG_FILE", &clouds), ("OS_CLOUD", "main")]);
        assert!(
            e.contains("OS_PASSWORD (or auth.password of cloud 'main' in ")
                && e.contains("my-clouds.yaml"),
            "{e}"
        );
        let e = err(&[("OS_CLIENT_CONFIG_FILE", &clouds), ("OS_CLOUD", "nope")]);
        assert!(e.contains("no such cloud (it has: app, main)"), "{e}");
        let e = err(&[
            ("OS_CLIENT_CONFIG_FILE", "/nonexistent/c.yaml"),
            ("OS_CLOUD", "main"),
        ]);
        assert!(
            e.contains("OS_CLIENT_CONFIG_FILE names /nonexistent/c.yaml"),
            "{e}"
        );
        // No clouds.yaml anywhere (HOME points at an empty folder).
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let e = err(&[("HOME", home.to_str().unwrap()), ("OS_CLOUD", "main")]);
        assert!(
            e.contains("no clouds.yaml") && e.contains(".config/openstack/clouds.yaml"),
            "{e}"
        );
        // Invalid YAML: the position, not the line (which may hold a password).
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "clouds:\n  x:\n    auth: {password: \"bad-secret\n  - [",
        )
        .unwrap();
        let e = err(&[
            ("OS_CLIENT_CONFIG_FILE", bad.to_str().unwrap()),
            ("OS_CLOUD", "x"),
        ]);
        assert!(e.contains("is not valid YAML"), "{e}");
        assert!(!e.contains("bad-secret"), "{e}");
    }

    #[test]
    fn clouds_yaml_found_in_home_config() {
        let (dir, _clouds, _secure) = clouds_dir();
        let home = dir.path().join("home");
        let conf = home.join(".config/openstack");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(conf.join("clouds.yaml"), CLOUDS).unwrap();
        std::fs::write(conf.join("secure.yaml"), SECURE).unwrap();
        let k = keystone(creds(&[
            ("HOME", home.to_str().unwrap()),
            ("OS_CLOUD", "main"),
        ]));
        assert!(
            matches!(k.method, KeystoneMethod::Password { ref password, .. } if password.expose() == "clouds-pw-secret")
        );
        // XDG_CONFIG_HOME wins over HOME.
        let e = err(&[
            ("HOME", home.to_str().unwrap()),
            ("XDG_CONFIG_HOME", "/nonexistent-xdg"),
            ("OS_CLOUD", "main"),
        ]);
        assert!(e.contains("/nonexistent-xdg/openstack/clouds.yaml"), "{e}");
    }

    #[test]
    fn renewal() {
        let now = jiff::Timestamp::now();
        let at = |secs: i64| SwiftToken {
            token: "t".into(),
            storage_url: "u".into(),
            expires_at: Some(
                now.checked_add(jiff::SignedDuration::from_secs(secs))
                    .unwrap(),
            ),
        };
        assert!(!at(3600).needs_renewal(now));
        assert!(!at(301).needs_renewal(now));
        assert!(at(299).needs_renewal(now));
        assert!(at(-10).needs_renewal(now));
    }

    fn catalog(json: serde_json::Value) -> Vec<CatalogService> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn endpoint_choice() {
        let cat = catalog(serde_json::json!([
            {"type": "identity", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://k/v3"}]},
            {"type": "object-store", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://r1/v1/AUTH_p/"},
                {"interface": "internal", "region_id": "R1", "url": "http://r1-int/v1/AUTH_p"},
                {"interface": "public", "region": "R2", "url": "http://r2/v1/AUTH_p"}]},
        ]));
        let p = Interface::Public;
        assert_eq!(
            choose_endpoint(&cat, p, Some("R1")).unwrap(),
            "http://r1/v1/AUTH_p"
        );
        assert_eq!(
            choose_endpoint(&cat, p, Some("R2")).unwrap(),
            "http://r2/v1/AUTH_p"
        );
        assert_eq!(
            choose_endpoint(&cat, Interface::Internal, None).unwrap(),
            "http://r1-int/v1/AUTH_p"
        );
        let e = choose_endpoint(&cat, p, None).unwrap_err();
        assert!(
            e.contains("several regions (R1, R2)") && e.contains("OS_REGION_NAME"),
            "{e}"
        );
        let e = choose_endpoint(&cat, p, Some("R9")).unwrap_err();
        assert!(e.contains("'R9'") && e.contains("R1, R2"), "{e}");
        let e = choose_endpoint(&cat, Interface::Admin, None).unwrap_err();
        assert!(
            e.contains("no admin endpoint (it has: internal, public)"),
            "{e}"
        );
        let e = choose_endpoint(&cat[..1], p, None).unwrap_err();
        assert!(
            e.contains("no object-store") && e.contains("it has: identity"),
            "{e}"
        );
        let e = choose_endpoint(&[], p, None).unwrap_err();
        assert!(e.contains("empty"), "{e}");
    }

    /// A one-shot HTTP server: answers `response` and returns the request it got.
    fn fake_server(response: String) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            stream.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&buf).into_owned()
        });
        (format!("http://{addr}"), handle)
    }

    fn http(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn password_auth(url: &str, region: Option<&str>) -> SwiftCredentials {
        SwiftCredentials::Keystone(KeystoneAuth {
            auth_url: format!("{url}/v3"),
            method: KeystoneMethod::Password {
                user: name("alice", DomainRef::Id("default".into())),
                password: "fake-pw-secret".into(),
                project: ProjectRef::Name {
                    name: "backups".into(),
                    domain: DomainRef::Id("default".into()),
                },
            },
            region: region.map(str::to_string),
            interface: Interface::Public,
        })
    }

    /// Authenticates against a fake server; returns the result and the request it got.
    fn against(
        response: String,
        region: Option<&str>,
    ) -> (Result<SwiftToken, StorageError>, String) {
        let (url, handle) = fake_server(response);
        let r = rt().block_on(authenticate(
            &reqwest::Client::new(),
            &password_auth(&url, region),
        ));
        (r, handle.join().unwrap())
    }

    const ERROR_401: &str = r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;

    #[test]
    fn keystone_status_mapping() {
        let (r, request) = against(http("401 Unauthorized", "", ERROR_401), None);
        assert!(request.starts_with("POST /v3/auth/tokens "), "{request}");
        assert!(request.contains("fake-pw-secret"));
        let Err(StorageError::Auth(m)) = r else {
            panic!("{r:?}")
        };
        assert!(
            m.contains(
                "refused the credentials of user alice (domain id default) in project backups"
            ) && m.contains("check OS_PASSWORD")
                && m.contains("requires authentication"),
            "{m}"
        );
        assert!(!m.contains("fake-pw-secret"), "{m}");

        let (r, _) = against(http("403 Forbidden", "", "{}"), None);
        assert!(
            matches!(&r, Err(StorageError::Auth(m)) if m.contains("403")),
            "{r:?}"
        );

        let (r, _) = against(http("404 Not Found", "", "<html>nope</html>"), None);
        let e = r.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("check OS_AUTH_URL"), "{e}");
        assert!(!e.to_string().contains("fake-pw-secret"), "{e}");

        let (r, _) = against(http("503 Service Unavailable", "", "busy"), None);
        let e = r.unwrap_err();
        assert!(e.is_retryable() && e.to_string().contains("503"), "{e}");

        let (r, _) = against(
            http(
                "400 Bad Request",
                "",
                r#"{"error":{"message":"Expecting to find domain in user."}}"#,
            ),
            None,
        );
        let e = r.unwrap_err();
        assert!(
            !e.is_retryable() && e.to_string().contains("Expecting to find domain"),
            "{e}"
        );
    }

    #[test]
    fn keystone_connection_refused_is_retryable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let creds = password_auth(&format!("http://127.0.0.1:{port}"), None);
        let e = rt()
            .block_on(authenticate(&reqwest::Client::new(), &creds))
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let m = e.to_string();
        assert!(
            m.contains(&format!("Keystone at http://127.0.0.1:{port}/v3")),
            "{m}"
        );
        assert!(!m.contains("fake-pw-secret"), "{m}");
    }

    #[test]
    fn keystone_success_and_catalog() {
        let body = serde_json::json!({"token": {
            "expires_at": "2030-01-02T03:04:05.000000Z",
            "catalog": [{"type": "object-store", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://swift/v1/AUTH_p"}]}]
        }})
        .to_string();
        let (r, _) = against(
            http(
                "201 Created",
                "X-Subject-Token: tok-abc\r\nContent-Type: application/json\r\n",
                &body,
            ),
            None,
        );
        let t = r.unwrap();
        assert_eq!(t.token.expose(), "tok-abc");
        assert_eq!(t.storage_url, "http://swift/v1/AUTH_p");
        assert_eq!(t.expires_at, Some("2030-01-02T03:04:05Z".parse().unwrap()));

        let body = serde_json::json!({"token": {"catalog": [
            {"type": "compute", "endpoints": []}, {"type": "identity", "endpoints": []}]}})
        .to_string();
        let (r, _) = against(http("201 Created", "X-Subject-Token: tok\r\n", &body), None);
        let e = r.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("it has: compute, identity"), "{e}");

        let (r, _) = against(http("201 Created", "", &body), None);
        assert!(r.unwrap_err().to_string().contains("X-Subject-Token"));
    }

    #[test]
    fn v1_fake_server() {
        let (url, handle) = fake_server(http(
            "200 OK",
            "X-Storage-Url: http://swift/v1/AUTH_test/\r\nX-Auth-Token: AUTH_tk1\r\nX-Auth-Token-Expires: 86399\r\n",
            "",
        ));
        let creds = SwiftCredentials::V1 {
            auth_url: format!("{url}/auth/v1.0"),
            user: "test:tester".into(),
            key: "v1-key-secret".into(),
        };
        let t = rt()
            .block_on(authenticate(&reqwest::Client::new(), &creds))
            .unwrap();
        let request = handle.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /auth/v1.0 "), "{request}");
        assert!(request.contains("x-auth-user: test:tester"), "{request}");
        assert!(request.contains("x-auth-key: v1-key-secret"), "{request}");
        assert_eq!(t.storage_url, "http://swift/v1/AUTH_test");
        assert_eq!(t.token.expose(), "AUTH_tk1");
        let left = t.expires_at.unwrap().duration_since(jiff::Timestamp::now());
        assert!(
            left.as_secs() > 86000 && left.as_secs() <= 86399,
            "{left:?}"
        );

        let (url, _handle) = fake_server(http("401 Unauthorized", "", "Unauthorized"));
        let creds = SwiftCredentials::V1 {
            auth_url: format!("{url}/auth/v1.0"),
            user: "test:tester".into(),
            key: "v1-key-secret".into(),
        };
        let e = rt()
            .block_on(authenticate(&reqwest::Client::new(), &creds))
            .unwrap_err();
        assert!(matches!(e, StorageError::Auth(_)), "{e:?}");
        assert!(e.to_string().contains("test:tester") && !e.to_string().contains("v1-key-secret"));
    }

    // -----------------------------------------------------------------------------------
    // Against the real servers of scripts/remote/all
    // -----------------------------------------------------------------------------------

    /// The process environment when `var` is set; `None` (skip) when it is not, except under
    /// `CI=true`, where the servers must be running.
    fn real_env(var: &str) -> Option<BTreeMap<String, String>> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        if env.get(var).is_some_and(|v| !v.is_empty()) {
            return Some(env);
        }
        if env.get("CI").map(String::as_str) == Some("true") {
            panic!(
                "{var} is not set although CI=true: start the test servers with \
                 `scripts/remote/all start` and `eval \"$(scripts/remote/all env)\"` before \
                 the tests"
            );
        }
        eprintln!(
            "skipped: {var} is not set (scripts/remote/all start; eval \"$(scripts/remote/all env)\")"
        );
        None
    }

    /// A lookup over some variables of `env`, plus `extra`.
    fn pick(
        env: &BTreeMap<String, String>,
        keys: &[&str],
        extra: &[(&str, &str)],
    ) -> impl Fn(&str) -> Option<String> + use<> {
        let mut map: BTreeMap<String, String> = keys
            .iter()
            .filter_map(|k| env.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        for (k, v) in extra {
            map.insert(k.to_string(), v.to_string());
        }
        move |k| map.get(k).cloned()
    }

    const OS_PASSWORD_VARS: &[&str] = &[
        "OS_AUTH_URL",
        "OS_IDENTITY_API_VERSION",
        "OS_AUTH_TYPE",
        "OS_USERNAME",
        "OS_PASSWORD",
        "OS_PROJECT_NAME",
        "OS_USER_DOMAIN_NAME",
        "OS_PROJECT_DOMAIN_NAME",
        "OS_REGION_NAME",
        "OS_INTERFACE",
    ];

    fn real_auth(lookup: impl Fn(&str) -> Option<String>) -> Result<SwiftToken, StorageError> {
        let creds = SwiftCredentials::from_lookup(lookup).expect("credentials");
        rt().block_on(authenticate(&reqwest::Client::new(), &creds))
    }

    /// Creates a container, PUTs and GETs an object with the token, and cleans up.
    fn put_get(t: &SwiftToken) {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let container = format!(
            "lifeboat-swift-auth-{}-{}-{n}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        );
        let c_url = format!("{}/{container}", t.storage_url);
        let o_url = format!("{c_url}/hello.txt");
        let data = format!("hello from {container}");
        rt().block_on(async {
            let client = reqwest::Client::new();
            let token = t.token.expose();
            let r = client
                .put(&c_url)
                .header("X-Auth-Token", token)
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success(),
                "PUT container {c_url}: {}",
                r.status()
            );
            let r = client
                .put(&o_url)
                .header("X-Auth-Token", token)
                .body(data.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED, "PUT {o_url}");
            let r = client
                .get(&o_url)
                .header("X-Auth-Token", token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "GET {o_url}");
            assert_eq!(r.text().await.unwrap(), data);
            let r = client
                .delete(&o_url)
                .header("X-Auth-Token", token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "DELETE {o_url}: {}", r.status());
            let r = client
                .delete(&c_url)
                .header("X-Auth-Token", token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "DELETE {c_url}: {}", r.status());
            // And a wrong token is refused, so the check above meant something.
            let r = client
                .get(&o_url)
                .header("X-Auth-Token", "bogus")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        });
    }

    fn assert_keystone_token(env: &BTreeMap<String, String>, t: &SwiftToken) {
        let prefix = env
            .get("LIFEBOAT_KEYSTONE_SWIFT_URL_PREFIX")
            .map_or("http://127.0.0.1:8081/v1/KEY_", String::as_str);
        assert!(t.storage_url.starts_with(prefix), "{}", t.storage_url);
        let expires = t.expires_at.expect("Keystone gives expires_at");
        let now = jiff::Timestamp::now();
        assert!(expires > now, "{expires}");
        if expires.duration_since(now) > RENEW_BEFORE {
            assert!(!t.needs_renewal(now));
        }
        assert!(
            t.needs_renewal(
                expires
                    .checked_sub(jiff::SignedDuration::from_secs(60))
                    .unwrap()
            )
        );
    }

    #[test]
    fn real_keystone_password() {
        let Some(env) = real_env("OS_AUTH_URL") else {
            return;
        };
        let t = real_auth(pick(&env, OS_PASSWORD_VARS, &[])).unwrap();
        assert_keystone_token(&env, &t);
        put_get(&t);
        // The auth URL without /v3 works too.
        let bare = env["OS_AUTH_URL"]
            .trim_end_matches('/')
            .trim_end_matches("/v3")
            .to_string();
        let t2 = real_auth(pick(&env, OS_PASSWORD_VARS, &[("OS_AUTH_URL", &bare)])).unwrap();
        assert_eq!(t2.storage_url, t.storage_url);
        // A pre-issued token (OS_STORAGE_URL + OS_AUTH_TOKEN) from that one works as is.
        let t3 = real_auth(lookup(&[
            ("OS_STORAGE_URL", &t.storage_url),
            ("OS_AUTH_TOKEN", t.token.expose()),
        ]))
        .unwrap();
        assert_eq!(t3.expires_at, None);
        put_get(&t3);
    }

    #[test]
    fn real_keystone_application_credential() {
        let Some(env) = real_env("OS_AUTH_URL") else {
            return;
        };
        let (Some(id), Some(secret)) = (
            env.get("LIFEBOAT_KEYSTONE_APPCRED_ID"),
            env.get("LIFEBOAT_KEYSTONE_APPCRED_SECRET"),
        ) else {
            panic!("OS_AUTH_URL is set but LIFEBOAT_KEYSTONE_APPCRED_ID/_SECRET are not");
        };
        let vars = [
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_APPLICATION_CREDENTIAL_ID", id.as_str()),
            ("OS_APPLICATION_CREDENTIAL_SECRET", secret.as_str()),
        ];
        let t = real_auth(pick(
            &env,
            &["OS_AUTH_URL", "OS_REGION_NAME", "OS_INTERFACE"],
            &vars,
        ))
        .unwrap();
        assert_keystone_token(&env, &t);
        put_get(&t);

        // A wrong secret: Auth, naming the credential, without the secret.
        let wrong = "wrong-appcred-secret-123";
        let e = real_auth(pick(
            &env,
            &["OS_AUTH_URL", "OS_REGION_NAME"],
            &[
                vars[0],
                vars[1],
                ("OS_APPLICATION_CREDENTIAL_SECRET", wrong),
            ],
        ))
        .unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, StorageError::Auth(_)), "{e:?}");
        assert!(
            m.contains(id.as_str()) && !m.contains(wrong) && !m.contains(secret.as_str()),
            "{m}"
        );
    }

    #[test]
    fn real_keystone_clouds_yaml() {
        let Some(env) = real_env("OS_AUTH_URL") else {
            return;
        };
        let file = ["OS_CLIENT_CONFIG_FILE"];
        let cloud =
            |var: &str, default: &str| env.get(var).cloned().unwrap_or_else(|| default.to_string());
        let password_cloud = cloud("LIFEBOAT_KEYSTONE_CLOUD", "lifeboat");
        let appcred_cloud = cloud("LIFEBOAT_KEYSTONE_APPCRED_CLOUD", "lifeboat-appcred");
        let t = real_auth(pick(&env, &file, &[("OS_CLOUD", &password_cloud)])).unwrap();
        assert_keystone_token(&env, &t);
        let t = real_auth(pick(&env, &file, &[("OS_CLOUD", &appcred_cloud)])).unwrap();
        assert_keystone_token(&env, &t);
        put_get(&t);
        // OS_* override the cloud: the decoy region's endpoint (nothing listens there).
        let t = real_auth(pick(
            &env,
            &file,
            &[
                ("OS_CLOUD", &appcred_cloud),
                ("OS_REGION_NAME", "RegionTwo"),
            ],
        ))
        .unwrap();
        assert!(
            t.storage_url.starts_with("http://127.0.0.3:8081/"),
            "{}",
            t.storage_url
        );
    }

    #[test]
    fn real_keystone_wrong_password() {
        let Some(env) = real_env("OS_AUTH_URL") else {
            return;
        };
        let wrong = "not-the-password-4711";
        let e = real_auth(pick(&env, OS_PASSWORD_VARS, &[("OS_PASSWORD", wrong)])).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, StorageError::Auth(_)), "{e:?}");
        assert!(!e.is_retryable());
        assert!(
            m.contains("refused the credentials of user lifeboat"),
            "{m}"
        );
        assert!(
            m.contains("project lifeboat") && m.contains("OS_PASSWORD"),
            "{m}"
        );
        assert!(
            !m.contains(wrong) && !m.contains(env["OS_PASSWORD"].as_str()),
            "{m}"
        );
        assert!(!format!("{e:?}").contains(wrong));
    }

    #[test]
    fn real_keystone_regions_interfaces_and_urls() {
        let Some(env) = real_env("OS_AUTH_URL") else {
            return;
        };
        let e = real_auth(pick(
            &env,
            OS_PASSWORD_VARS,
            &[("OS_REGION_NAME", "Atlantis")],
        ))
        .unwrap_err();
        let m = e.to_string();
        assert!(!e.is_retryable());
        assert!(
            m.contains("'Atlantis'")
                && m.contains("RegionOne, RegionTwo")
                && m.contains("OS_REGION_NAME"),
            "{m}"
        );
        // No region: RegionOne and RegionTwo both have public endpoints.
        let no_region: Vec<&str> = OS_PASSWORD_VARS
            .iter()
            .copied()
            .filter(|v| *v != "OS_REGION_NAME")
            .collect();
        let e = real_auth(pick(&env, &no_region, &[])).unwrap_err();
        assert!(
            e.to_string()
                .contains("several regions (RegionOne, RegionTwo)"),
            "{e}"
        );
        // Interfaces: internal is the real proxy, admin a decoy.
        let t = real_auth(pick(
            &env,
            OS_PASSWORD_VARS,
            &[("OS_INTERFACE", "internalURL")],
        ))
        .unwrap();
        assert!(
            t.storage_url.starts_with("http://127.0.0.1:8081/"),
            "{}",
            t.storage_url
        );
        let t = real_auth(pick(&env, OS_PASSWORD_VARS, &[("OS_INTERFACE", "admin")])).unwrap();
        assert!(
            t.storage_url.starts_with("http://127.0.0.3:8081/"),
            "{}",
            t.storage_url
        );
        // A URL where Keystone has no v3 API: 404, a clear message.
        let base = env["OS_AUTH_URL"]
            .trim_end_matches('/')
            .trim_end_matches("/v3")
            .to_string();
        let nowhere = format!("{base}/nowhere");
        let e = real_auth(pick(&env, OS_PASSWORD_VARS, &[("OS_AUTH_URL", &nowhere)])).unwrap_err();
        assert!(!e.is_retryable());
        assert!(
            e.to_string().contains("no Keystone v3 identity API there"),
            "{e}"
        );
    }

    #[test]
    fn real_swift_v1_tempauth() {
        let Some(env) = real_env("LIFEBOAT_SWIFT_AUTH_URL") else {
            return;
        };
        let vars = [
            ("ST_AUTH", env["LIFEBOAT_SWIFT_AUTH_URL"].as_str()),
            ("ST_USER", env["LIFEBOAT_SWIFT_USER"].as_str()),
            ("ST_KEY", env["LIFEBOAT_SWIFT_KEY"].as_str()),
        ];
        let t = real_auth(lookup(&vars)).unwrap();
        if let Some(url) = env.get("LIFEBOAT_SWIFT_STORAGE_URL") {
            assert_eq!(&t.storage_url, url);
        }
        if let Some(expires) = t.expires_at {
            assert!(expires > jiff::Timestamp::now());
        }
        put_get(&t);

        let wrong = "wrong-swift-key-0815";
        let e = real_auth(lookup(&[vars[0], vars[1], ("ST_KEY", wrong)])).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, StorageError::Auth(_)), "{e:?}");
        assert!(
            m.contains(vars[1].1) && !m.contains(wrong) && !m.contains(vars[2].1),
            "{m}"
        );
    }
}

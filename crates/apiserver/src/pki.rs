//! First-start credentials: a CA, a serving certificate signed by it, a client certificate and a
//! bearer token for the admin, and the kubeconfig that carries them. Everything is written into
//! the data directory once and reused on every later start.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Paths and material of the server's credentials.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub admin_token: String,
}

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const ADMIN_CERT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";
const TOKEN: &str = "admin.token";

fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Every address of this machine, for the serving certificate's SANs.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|v| v.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    for lo in ["127.0.0.1", "::1"] {
        let ip: IpAddr = lo.parse().unwrap();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

fn serving_params(extra_ips: &[IpAddr]) -> Result<CertificateParams> {
    let mut names = vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() && !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    let mut params = CertificateParams::new(names)?;
    for ip in local_addresses().into_iter().chain(extra_ips.iter().copied()) {
        if !params.subject_alt_names.contains(&SanType::IpAddress(ip)) {
            params.subject_alt_names.push(SanType::IpAddress(ip));
        }
    }
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    Ok(params)
}

impl Pki {
    /// Loads the credentials from `dir`, creating whatever is missing. `extra_ips` go into the
    /// serving certificate (e.g. the `kubernetes` Service's ClusterIP).
    pub fn load_or_create(dir: &Path, extra_ips: &[IpAddr]) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_cert_path = dir.join(CA_CERT);
        let ca_key_path = dir.join(CA_KEY);
        let (ca_pem, ca_key_pem) = if ca_cert_path.exists() && ca_key_path.exists() {
            (std::fs::read_to_string(&ca_cert_path)?, std::fs::read_to_string(&ca_key_path)?)
        } else {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, "switchboard-ca");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params.self_signed(&key)?;
            let (c, k) = (cert.pem(), key.serialize_pem());
            write_private(&ca_key_path, &k)?;
            std::fs::write(&ca_cert_path, &c)?;
            (c, k)
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("parsing ca.key")?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("parsing ca.crt")?;

        // The serving certificate is re-issued on every start so that it names the machine's
        // current addresses; the CA (which clients trust) never changes.
        let server_key = KeyPair::generate()?;
        let server_cert = serving_params(extra_ips)?.signed_by(&server_key, &issuer)?;
        let (server_cert_pem, server_key_pem) = (server_cert.pem(), server_key.serialize_pem());
        write_private(&dir.join(SERVER_KEY), &server_key_pem)?;
        std::fs::write(dir.join(SERVER_CERT), &server_cert_pem)?;

        if !dir.join(ADMIN_CERT).exists() || !dir.join(ADMIN_KEY).exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, "admin");
            params.distinguished_name.push(DnType::OrganizationName, "system:masters");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params.signed_by(&key, &issuer)?;
            write_private(&dir.join(ADMIN_KEY), &key.serialize_pem())?;
            std::fs::write(dir.join(ADMIN_CERT), cert.pem())?;
        }

        let token_path = dir.join(TOKEN);
        let admin_token = if token_path.exists() {
            std::fs::read_to_string(&token_path)?.trim().to_string()
        } else {
            use rand::Rng;
            let bytes: [u8; 24] = rand::rng().random();
            let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&token_path, &t)?;
            t
        };
        Ok(Pki { dir: dir.to_path_buf(), ca_pem, server_cert_pem, server_key_pem, admin_token })
    }

    /// Writes `DIR/kubeconfig` for `server_url`, with the admin token (kubectl's simplest path)
    /// and the CA so that TLS is verified.
    pub fn write_kubeconfig(&self, server_url: &str) -> Result<PathBuf> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let ca = b64.encode(self.ca_pem.as_bytes());
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server_url}\n  name: switchboard\ncontexts:\n- context:\n    cluster: switchboard\n    user: admin\n  name: switchboard\ncurrent-context: switchboard\npreferences: {{}}\nusers:\n- name: admin\n  user:\n    token: {token}\n",
            token = self.admin_token
        );
        let path = self.dir.join("kubeconfig");
        write_private(&path, &kubeconfig)?;
        Ok(path)
    }

    pub fn admin_cert_path(&self) -> PathBuf {
        self.dir.join(ADMIN_CERT)
    }

    pub fn admin_key_path(&self) -> PathBuf {
        self.dir.join(ADMIN_KEY)
    }
}

//! TLS stays exactly as strict with the roots compiled in. A local TLS front
//! (`openssl s_server`) whose certificate chains to a root of this test's
//! own: through the HTTPS client the functions build
//! (`push_aws::deployment::https_client_trusting`), the built-in roots
//! (AWS's alone) refuse it, and the operator's switch to the system's store
//! (`TLS_TRUST_ROOTS=system`, with that root in `SSL_CERT_FILE`) trusts it.
//! Its own test binary: the system's roots are loaded once per process.

// A test: a failure to set up is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use push_aws::deployment::{https_client_trusting, TrustRoots, AWS_ROOTS_PEM};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (Debian's openssl package)");
    assert!(status.success(), "openssl {args:?}");
}

/// A root and a certificate for `localhost` it signed, in `dir`.
fn private_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut root = vec!["req", "-x509"];
    root.extend(ec);
    root.extend([
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "2",
        "-subj",
        "/CN=push-aws test root",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &root);
    let mut leaf = vec!["req"];
    leaf.extend(ec);
    leaf.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &leaf);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
}

/// `openssl s_server`, and the stdin it needs open while it serves.
struct Front(Child, Option<std::process::ChildStdin>);

impl Drop for Front {
    fn drop(&mut self) {
        self.1.take();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` on a free port with the `localhost` certificate: it
/// completes TLS handshakes and writes what it receives, decrypted, to
/// `received` (it answers nothing).
fn tls_front(dir: &Path, received: &Path) -> (Front, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("openssl")
        .args(["s_server", "-cert", "leaf.pem", "-key", "leaf.key"])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(received).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let stdin = child.stdin.take();
    let front = Front(child, stdin);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (front, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("openssl s_server did not listen on {port}");
}

/// A DynamoDB call to the front through the functions' HTTPS client.
async fn call(
    port: u16,
    roots: TrustRoots,
) -> SdkError<impl std::error::Error, impl std::fmt::Debug> {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(https_client_trusting(roots))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(3))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
        .list_tables()
        .send()
        .await
        .expect_err("s_server answers nothing")
}

/// Every message of an error's chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[tokio::test]
async fn a_private_root_is_refused_by_the_built_in_roots_and_trusted_through_the_switch() {
    let dir: PathBuf = std::env::temp_dir().join(format!("push-aws-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    private_pki(&dir);
    let received = dir.join("received");
    let (_front, port) = tls_front(&dir, &received);
    let requests = || std::fs::read_to_string(&received).unwrap_or_default();

    // The built-in roots: the handshake fails on the certificate, and no
    // request reaches the front.
    let refused = call(port, TrustRoots::BuiltIn).await;
    let text = chain(&refused);
    assert!(
        matches!(refused, SdkError::DispatchFailure(_)),
        "not refused before a request: {text}"
    );
    assert!(
        text.contains("UnknownIssuer") || text.contains("invalid peer certificate"),
        "refused, but not for its certificate: {text}"
    );
    assert!(!requests().contains("POST / HTTP/1.1"), "{}", requests());

    // The operator's switch, the test's root in the system's store: the
    // handshake succeeds and the DynamoDB request reaches the front,
    // decrypted (which answers nothing: the call times out).
    std::env::set_var("SSL_CERT_FILE", dir.join("root.pem"));
    std::env::set_var("SSL_CERT_DIR", dir.join("no-such-dir"));
    let trusted = call(port, TrustRoots::System).await;
    let text = chain(&trusted);
    assert!(
        !text.contains("certificate") && !matches!(trusted, SdkError::DispatchFailure(_)),
        "the switch did not get past the handshake: {text}"
    );
    let mut seen = requests();
    for _ in 0..50 {
        if seen.contains("POST / HTTP/1.1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        seen = requests();
    }
    assert!(
        seen.contains("POST / HTTP/1.1"),
        "the front got no request: {seen}"
    );
    assert!(
        seen.contains("X-Amz-Target: DynamoDB_20120810.ListTables")
            || seen
                .to_lowercase()
                .contains("x-amz-target: dynamodb_20120810.listtables"),
        "{seen}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The SHA-256 fingerprints of the built-in roots, as docs/SECURITY.md lists
/// them (Amazon Trust Services' repository publishes the same).
const FINGERPRINTS: [&str; 5] = [
    // Amazon Root CA 1
    "8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E",
    // Amazon Root CA 2
    "1B:A5:B2:AA:8C:65:40:1A:82:96:01:18:F8:0B:EC:4F:62:30:4D:83:CE:C4:71:3A:19:C3:9C:01:1E:A4:6D:B4",
    // Amazon Root CA 3
    "18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4",
    // Amazon Root CA 4
    "E3:5D:28:41:9E:D0:20:25:CF:A6:90:38:CD:62:39:62:45:8D:A5:C6:95:FB:DE:A3:C2:2B:0B:FB:25:89:70:92",
    // Starfield Services Root Certificate Authority - G2
    "56:8D:69:05:A2:C8:87:08:A4:B3:02:51:90:ED:CF:ED:B1:97:4A:60:6A:13:C6:E5:29:0F:CB:2A:E6:3E:DA:B5",
];

#[test]
fn the_built_in_roots_are_amazon_trust_services_five_by_fingerprint() {
    let end = "-----END CERTIFICATE-----";
    let certificates: Vec<String> = AWS_ROOTS_PEM
        .split_inclusive(end)
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .map(|c| c.trim().to_string())
        .collect();
    let mut found = Vec::new();
    for certificate in &certificates {
        let mut child = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(certificate.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        found.push(
            text.trim()
                .rsplit('=')
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(found, FINGERPRINTS);
    assert_eq!(TrustRoots::parse(None), Ok(TrustRoots::BuiltIn));
    assert_eq!(TrustRoots::parse(Some("built-in")), Ok(TrustRoots::BuiltIn));
    assert_eq!(TrustRoots::parse(Some("system")), Ok(TrustRoots::System));
    assert!(TrustRoots::parse(Some("none")).is_err());
}

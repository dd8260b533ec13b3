//! Proves the shared test harness works: a real PostgreSQL cluster, a real nginx with
//! WebDAV, and the fault-injecting proxy really breaking and restoring connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use support::nginx::{Nginx, NginxOptions};
use support::pg::PgCluster;
use support::proxy::{Mode, Proxy};

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

fn test_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

async fn pg_connect(url: &str, timeout: Duration) -> Result<tokio_postgres::Client, String> {
    match tokio::time::timeout(timeout, tokio_postgres::connect(url, tokio_postgres::NoTls)).await {
        Err(_) => Err("timeout".to_string()),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Ok(Ok((client, conn))) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
    }
}

fn port_refuses(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cluster_queries_auth_and_restart() {
    let t = Instant::now();
    let pg = PgCluster::new();
    eprintln!("PgCluster::new took {:?} (port {})", t.elapsed(), pg.port());
    assert!(pg.is_running());

    let client = pg.client().await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO t VALUES ($1, $2), ($3, $4)",
            &[&1i32, &"one", &2i32, &"two"],
        )
        .await
        .unwrap();
    let rows = client
        .query("SELECT id, name FROM t ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![(1, "one".to_string()), (2, "two".to_string())]);
    assert_eq!(pg.psql("SELECT count(*) FROM t"), "2");
    assert_eq!(
        pg.psql("SELECT current_user || '@' || current_database()"),
        "kiosk@kiosk"
    );
    assert_eq!(
        pg.psql("SELECT id, name FROM t ORDER BY id"),
        "1|one\n2|two"
    );

    // Wrong password: a real SCRAM authentication failure.
    let err = tokio_postgres::connect(&pg.url_wrong_password(), tokio_postgres::NoTls)
        .await
        .err()
        .expect("wrong password must fail");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
    assert!(pg.try_psql("SELECT 1").is_ok());

    // Offline: the live connection dies, new ones are refused.
    drop(client);
    let t = Instant::now();
    pg.stop();
    eprintln!("PgCluster::stop took {:?}", t.elapsed());
    assert!(!pg.is_running());
    let err = pg_connect(&pg.url(), Duration::from_secs(5)).await.err();
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with("error")),
        "{err:?}"
    );
    assert!(port_refuses(pg.port()));
    assert!(pg.try_psql("SELECT 1").is_err());

    // Online again, same port, same data.
    let t = Instant::now();
    pg.start();
    eprintln!("PgCluster::start took {:?}", t.elapsed());
    assert!(pg.is_running());
    let client = pg.client().await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    assert_eq!(
        pg.psql_admin("SELECT rolname FROM pg_roles WHERE rolname = 'kiosk'"),
        "kiosk"
    );
}

#[test]
fn pg_clusters_are_independent_and_cleaned_up() {
    let t = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(PgCluster::new);
        let b = s.spawn(PgCluster::new);
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!("two concurrent clusters took {:?}", t.elapsed());
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    a.psql("CREATE TABLE only_in_a (x int)");
    assert!(b.try_psql("SELECT * FROM only_in_a").is_err());

    // Drop stops the server and removes the directory.
    let (port, dir) = (a.port(), a.dir().to_path_buf());
    drop(a);
    assert!(port_refuses(port));
    assert!(!dir.exists());

    // Also when the owning test panics (Drop runs on unwind).
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let c = PgCluster::new();
        tx.send((c.port(), c.dir().to_path_buf())).unwrap();
        panic!("simulated test failure");
    })
    .join();
    assert!(r.is_err());
    let (port, dir) = rx.recv().unwrap();
    assert!(port_refuses(port));
    assert!(!dir.exists());
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_webdav_put_get_delete() {
    let t = Instant::now();
    let nginx = Nginx::start();
    eprintln!(
        "Nginx::start took {:?} (port {})",
        t.elapsed(),
        nginx.port()
    );
    let http = http();
    let body = test_bytes(300_000, 7);
    let url = format!("{}abc123.jpg", nginx.base_url());
    assert_eq!(url, nginx.url_for("abc123.jpg"));
    assert_eq!(url, nginx.server_url("/uploads/abc123.jpg"));

    let r = http.put(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", nginx.error_log());
    // Overwrite is allowed (idempotent re-upload): 204.
    let r = http.put(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 204);

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[..]);

    let on_disk = std::fs::read(nginx.root().join("abc123.jpg")).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&on_disk)),
        hex::encode(Sha256::digest(&body))
    );
    assert_eq!(nginx.stored_files(), vec!["abc123.jpg".to_string()]);

    // create_full_put_path
    let r = http
        .put(nginx.url_for("a/b/c.bin"))
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        std::fs::read(nginx.root().join("a/b/c.bin")).unwrap(),
        vec![1u8, 2, 3]
    );

    let r = http.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(!nginx.root().join("abc123.jpg").exists());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 404);

    // Error locations.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = http
            .request(method.clone(), format!("{}x.jpg", nginx.forbidden_url()))
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} /forbidden/");
        let r = http
            .request(method.clone(), format!("{}x.jpg", nginx.full_url()))
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 507, "{method} /full/");
    }
    // A large body to /full/ still gets its 507.
    let r = http
        .put(format!("{}big.jpg", nginx.full_url()))
        .body(test_bytes(2_000_000, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);

    // stop → unreachable; restart → same port, same files.
    nginx.stop();
    assert!(!nginx.is_running());
    assert!(port_refuses(nginx.port()));
    assert!(http.get(nginx.url_for("a/b/c.bin")).send().await.is_err());
    nginx.restart();
    assert!(nginx.is_running());
    let r = http.get(nginx.url_for("a/b/c.bin")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[1u8, 2, 3]);

    let (port, root) = (nginx.port(), nginx.root());
    drop(nginx);
    assert!(port_refuses(port));
    assert!(!root.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_basic_auth_for_writes() {
    let nginx = Nginx::start_with(NginxOptions {
        basic_auth: Some(("uploader".into(), "s3cret".into())),
    });
    let http = http();
    let url = format!("{}p.jpg", nginx.base_url());

    let r = http.put(&url).body("x").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .put(&url)
        .basic_auth("uploader", Some("wrong"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .put(&url)
        .basic_auth("uploader", Some("s3cret"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", nginx.error_log());
    // Reads stay public.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = http.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .delete(&url)
        .basic_auth("uploader", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(nginx.stored_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_breaks_and_restores_postgres() {
    let pg = PgCluster::new();
    let proxy = Proxy::start(pg.addr());
    let url = pg.url_with_port(proxy.port());

    // Pass
    let client = pg_connect(&url, Duration::from_secs(5)).await.unwrap();
    let v: i32 = client.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(v, 42);
    assert_eq!(proxy.live(), 1);
    assert_eq!(proxy.accepted(), 1);

    // cut_all kills the live connection.
    proxy.cut_all();
    let r = tokio::time::timeout(Duration::from_secs(5), client.query_one("SELECT 1", &[])).await;
    assert!(
        matches!(r, Ok(Err(_))),
        "query after cut_all must fail fast: {r:?}"
    );
    assert!(client.is_closed());

    // Refuse: fails quickly.
    proxy.set_mode(Mode::Refuse);
    let t = Instant::now();
    let err = pg_connect(&url, Duration::from_secs(5)).await.err();
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with("error")),
        "{err:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let e = std::net::TcpStream::connect(proxy.addr()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);

    // Stall: black hole, a 1 s timeout fires.
    proxy.set_mode(Mode::Stall);
    let t = Instant::now();
    let err = pg_connect(&url, Duration::from_secs(1)).await.err();
    assert_eq!(err.as_deref(), Some("timeout"));
    assert!(t.elapsed() >= Duration::from_secs(1));

    // A live connection freezes in Stall and resumes in Pass.
    proxy.set_mode(Mode::Pass);
    let client = pg_connect(&url, Duration::from_secs(5)).await.unwrap();
    proxy.set_mode(Mode::Stall);
    let q = client.query_one("SELECT 7", &[]);
    tokio::pin!(q);
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut q)
        .await
        .is_err());
    proxy.set_mode(Mode::Pass);
    let v: i32 = tokio::time::timeout(Duration::from_secs(5), q)
        .await
        .expect("resumes after Stall")
        .unwrap()
        .get(0);
    assert_eq!(v, 7);

    // Drop after N bytes: the startup exchange is cut.
    proxy.set_mode(Mode::DropAfter(20));
    let err = pg_connect(&url, Duration::from_secs(5)).await.err();
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with("error")),
        "{err:?}"
    );
    // Random Drop: a connection doing many round trips does not survive.
    proxy.set_mode(Mode::Drop);
    let cuts_before = proxy.cuts();
    let mut failed = false;
    for _ in 0..50 {
        match pg_connect(&url, Duration::from_secs(5)).await {
            Err(_) => failed = true,
            Ok(c) => {
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(1) {
                    if c.query_one("SELECT 1", &[]).await.is_err() {
                        failed = true;
                        break;
                    }
                }
            }
        }
        if failed {
            break;
        }
    }
    assert!(failed);
    assert!(proxy.cuts() > cuts_before);

    // Back to Pass: works again.
    proxy.set_mode(Mode::Pass);
    let client = pg_connect(&url, Duration::from_secs(5)).await.unwrap();
    let v: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(v, 1);
    assert_eq!(
        client
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );

    // Dropping the proxy frees its port and ends its connections.
    let port = proxy.port();
    drop(proxy);
    assert!(port_refuses(port));
    let r = tokio::time::timeout(Duration::from_secs(5), client.query_one("SELECT 1", &[])).await;
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_breaks_and_restores_http() {
    let nginx = Nginx::start();
    let proxy = Proxy::to_port(nginx.port());
    let http = http();
    let via = nginx.base_url_with_port(proxy.port());
    let body = test_bytes(1_000_000, 3);

    let r = http
        .put(format!("{via}f.jpg"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http.get(format!("{via}f.jpg")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), body.len());

    proxy.set_mode(Mode::Stall);
    let t = Instant::now();
    let r = http
        .get(format!("{via}f.jpg"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    let err = r.expect_err("stalled request must time out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3));

    proxy.set_mode(Mode::Refuse);
    let err = http.get(format!("{via}f.jpg")).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // Cut mid-download: the body is truncated/errors.
    proxy.set_mode(Mode::DropAfter(50_000));
    let r = async {
        let r = http.get(format!("{via}f.jpg")).send().await?;
        r.bytes().await
    }
    .await;
    assert!(r.is_err(), "download through DropAfter must fail");

    proxy.set_mode(Mode::Pass);
    let r = http.get(format!("{via}f.jpg")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[..]);
    // Keep-alive reuses connections; the cut one at least forced a new one.
    assert!(proxy.accepted() >= 2, "{}", proxy.accepted());
    assert!(proxy.cuts() >= 1);
}

//! The web page in a real browser: headless Chromium (Debian `chromium`, `chromium-driver`)
//! driven over WebDriver (fantoccini) against a real `mserver --demo` with its mock modem.
//! Screenshots go to `target/web-screenshots/` as artifacts. Without Chromium the tests print
//! the testkit's SKIPPED line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_testkit::{skip, tool_available};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(30);
/// A dial on the mock modem takes a few seconds; generous on a loaded box.
const DIAL_LIMIT: Duration = Duration::from_secs(90);

/// A child process killed by PID when dropped (panics included): SIGTERM, then SIGKILL.
/// With `group`, the child leads its own process group and the whole group is signalled
/// (chromedriver's Chromium processes would otherwise outlive a failed test).
struct Proc(Option<Child>, bool);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            if let Some(pid) = c.id().and_then(|p| i32::try_from(p).ok()) {
                if self.1 {
                    let _ = kill(Pid::from_raw(-pid), Signal::SIGTERM);
                    std::thread::sleep(Duration::from_millis(300));
                    let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                }
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                for _ in 0..50 {
                    if matches!(c.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = c.try_wait();
            }
        }
    }
}

fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots");
    let _ = std::fs::create_dir_all(&d);
    d
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Chromium and its driver, or the SKIPPED line.
fn browser_available(test: &str) -> bool {
    tool_available(
        test,
        "chromedriver",
        &["--version"],
        "apt-get install chromium chromium-driver",
    ) && tool_available(
        test,
        "chromium",
        &["--version"],
        "apt-get install chromium chromium-driver",
    )
}

/// The demo: its printed gRPC address, web page URL and passwords.
struct Demo {
    _proc: Proc,
    grpc: String,
    web: String,
    demo_pw: String,
    admin_pw: String,
}

async fn start_demo() -> Demo {
    let log = std::fs::File::create(artifacts().join("mserver-demo.log")).ok();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mserver"));
    cmd.arg("--demo")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log.map_or_else(Stdio::null, Stdio::from))
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("mserver: {e}"));
    let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let proc = Proc(Some(child), false);
    let mut lines = BufReader::new(out).lines();
    let (mut grpc, mut web, mut demo_pw, mut admin_pw) =
        (String::new(), String::new(), String::new(), String::new());
    let read = async {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(a) = l.strip_prefix("masqdial demo server on ") {
                grpc = a.trim().to_string();
            }
            let words: Vec<&str> = l.split_whitespace().collect();
            if words.len() == 4 && words[2] == "password:" {
                match words[0] {
                    "demo" => demo_pw = words[3].to_string(),
                    "admin" => admin_pw = words[3].to_string(),
                    _ => {}
                }
            }
            if let Some(u) = l.strip_prefix("Web page: ") {
                web = u.split_whitespace().next().unwrap_or_default().to_string();
                break;
            }
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .unwrap_or_else(|_| panic!("the demo printed no web page line"));
    // Keep draining stdout so the demo never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert!(web.starts_with("http://127.0.0.1:"), "{web}");
    Demo {
        _proc: proc,
        grpc,
        web,
        demo_pw,
        admin_pw,
    }
}

/// chromedriver on a free port and a headless Chromium session through it.
async fn browser() -> (Proc, Client) {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver: {e}"));
    let driver = Proc(Some(driver), true);
    let profile = std::env::temp_dir().join(format!("masqdial-chromium-{port}"));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-crash-reporter", "--disable-breakpad",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let conn = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(conn)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("no WebDriver session: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn shot(c: &Client, name: &str) {
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(artifacts().join(format!("{name}.png")), png);
    }
}

/// Wait until `f` holds (bounded by `limit`; polls every 200 ms).
async fn until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn state_of(c: &Client, conn: &str) -> String {
    text_of(c, &format!("[data-connection={conn}] [data-field=state]")).await
}

async fn log_in(c: &Client, web: &str, user: &str, pw: &str) {
    c.goto(web).await.unwrap_or_else(|e| panic!("{e}"));
    let form = c
        .wait()
        .at_most(LIMIT)
        .for_element(Locator::Css("form#login"))
        .await
        .unwrap_or_else(|e| panic!("no login form: {e}"));
    let f = c
        .form(Locator::Css("form#login"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = form;
    f.set_by_name("user", user)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    f.set_by_name("password", pw)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("form#login button[type=submit]"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(LIMIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Whether the page scrolls sideways.
async fn horizontal_scroll(c: &Client) -> bool {
    c.execute(
        "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
        vec![],
    )
    .await
    .ok()
    .and_then(|v| v.as_bool())
    .unwrap_or(true)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_log_in_dial_watch_masq_hang_up_force_revoke_and_phone_layout() {
    let test = "browser_log_in_dial_watch_masq_hang_up_force_revoke_and_phone_layout";
    if !browser_available(test) {
        return;
    }
    let demo = start_demo().await;
    let (_driver, c) = browser().await;
    let web = demo.web.clone();

    // Wrong password refused, on the login form again with the reason.
    log_in(&c, &web, "demo", "wrong-password").await;
    until("the refusal", LIMIT, || async {
        text_of(&c, "form#login .error")
            .await
            .contains("invalid user name or password")
    })
    .await;
    shot(&c, "login-refused-1280").await;

    // Log in and see the connections live.
    log_in(&c, &web, "demo", &demo.demo_pw).await;
    until("isp1 idle", LIMIT, || async {
        state_of(&c, "isp1").await == "idle"
    })
    .await;
    // Figures (printed, not asserted): time to interactive and bytes of the first view.
    let fig = c
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];
             const r = performance.getEntriesByType('resource').filter(e => !e.name.endsWith('/events'));
             const size = e => e.transferSize || e.encodedBodySize || 0;
             return [window.masqdialInteractive || -1, n.domInteractive,
                     size(n) + r.reduce((a, e) => a + size(e), 0), r.length + 1];",
            vec![],
        )
        .await
        .unwrap_or_default();
    println!(
        "figure: first view: interactive (live connections drawn) at {} ms, DOM interactive at {} ms, {} bytes in {} requests",
        fig[0], fig[1], fig[2], fig[3]
    );

    // Dial: progress lines and the state reaching up, live.
    click(&c, "[data-connection=isp1] [data-action=dial]").await;
    until("isp1 up", DIAL_LIMIT, || async {
        state_of(&c, "isp1").await == "up"
    })
    .await;
    let progress = text_of(&c, "[data-connection=isp1] .progress").await;
    assert!(progress.contains("CONNECT"), "{progress}");
    assert!(progress.contains("isp1 is up"), "{progress}");
    shot(&c, "connections-1280").await;

    // CSRF: a POST with the session cookie alone is refused and changes nothing.
    let status = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/connections/isp1/hangup', {method: 'POST', body: new URLSearchParams({x: '1'})})
               .then(r => done(r.status)).catch(() => done(0));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.as_u64(), Some(403));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state_of(&c, "isp1").await, "up");

    // Masquerade rows appear (the demo's LAN host needs root's namespaces) and their expire
    // cells count down in the page.
    c.goto(&format!("{web}#masq"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("free-port gauges", LIMIT, || async {
        c.find(Locator::Css("[data-field=free-ports]"))
            .await
            .is_ok()
    })
    .await;
    if is_root() {
        until("masquerade rows", DIAL_LIMIT, || async {
            c.find(Locator::Css("table#masq tr[data-proto]"))
                .await
                .is_ok()
        })
        .await;
        let cell = "table#masq tr[data-proto] [data-field=expire]";
        let a = text_of(&c, cell).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let b = text_of(&c, cell).await;
        assert!(
            !a.is_empty() && b < a,
            "expire did not count down: {a} then {b}"
        );
        shot(&c, "masq-1280").await;
    } else {
        skip(
            test,
            "masquerade rows need the demo's LAN namespace (root); checked the gauges only",
        );
    }
    c.goto(&format!("{web}#details/isp1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("details", LIMIT, || async {
        text_of(&c, "#details").await.contains("Transcript")
    })
    .await;
    shot(&c, "details-1280").await;

    // 360 px: no horizontal scroll on any view.
    c.set_window_size(360, 800)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for view in ["connections", "masq", "details/isp1", "modems"] {
        c.goto(&format!("{web}#{view}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !horizontal_scroll(&c).await,
            "{view} scrolls sideways at 360 px"
        );
        shot(&c, &format!("{}-360", view.replace("/isp1", ""))).await;
    }
    c.set_window_size(1280, 900)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.goto(&format!("{web}#connections"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Hang up (the only holder: the link drops).
    until("isp1 up again on the page", LIMIT, || async {
        state_of(&c, "isp1").await == "up"
    })
    .await;
    click(&c, "[data-connection=isp1] [data-action=hangup]").await;
    until("isp1 idle after hang-up", DIAL_LIMIT, || async {
        state_of(&c, "isp1").await == "idle"
    })
    .await;

    // Dial again as demo, log out, and force the hang-up as admin (the dialog names demo).
    click(&c, "[data-connection=isp1] [data-action=dial]").await;
    until("isp1 up (second dial)", DIAL_LIMIT, || async {
        state_of(&c, "isp1").await == "up"
    })
    .await;
    click(&c, "[data-action=logout]").await;
    until("login form after logout", LIMIT, || async {
        c.find(Locator::Css("form#login")).await.is_ok()
    })
    .await;
    log_in(&c, &web, "admin", &demo.admin_pw).await;
    until("isp1 up seen by admin", LIMIT, || async {
        state_of(&c, "isp1").await == "up"
    })
    .await;
    click(&c, "[data-connection=isp1] [data-action=force-hangup]").await;
    let asked = c.get_alert_text().await.unwrap_or_default();
    assert!(asked.contains("demo@"), "{asked}");
    c.accept_alert().await.unwrap_or_else(|e| panic!("{e}"));
    until("isp1 idle after the forced hang-up", DIAL_LIMIT, || async {
        state_of(&c, "isp1").await == "idle"
    })
    .await;
    shot(&c, "forced-hangup-1280").await;

    // A session revoked from the command line (RevokeSession, as `mclient revoke --user
    // admin`) ends the page's session: back to the login form.
    let ch = tonic::transport::Channel::from_shared(demo.grpc.clone())
        .unwrap_or_else(|e| panic!("{e}"))
        .timeout(LIMIT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let token = AuthClient::new(ch.clone())
        .login(pb::LoginRequest {
            user: "admin".into(),
            password: demo.admin_pw.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .token;
    let mut req = tonic::Request::new(pb::RevokeSessionRequest {
        user: "admin".into(),
        id: String::new(),
    });
    let bearer = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|e| panic!("{e:?}"));
    req.metadata_mut().insert("authorization", bearer);
    AuthClient::new(ch)
        .revoke_session(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("login form after revocation", LIMIT, || async {
        c.find(Locator::Css("form#login")).await.is_ok()
    })
    .await;
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_outside_the_allow_list_gets_no_page() {
    let test = "browser_outside_the_allow_list_gets_no_page";
    if !browser_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let h = masqdial_server::auth::hash_password_with("pw", masqdial_server::auth::fast_params())
        .unwrap_or_default();
    let (grpc, webp) = (free_port(), free_port());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{grpc}\"\nallow = [\"10.0.0.0/8\"]\nstate_dir = {:?}\n\n\
         [web]\nlisten = \"127.0.0.1:{webp}\"\n\n\
         [[users]]\nname = \"admin\"\npassword_hash = \"{h}\"\nrole = \"admin\"\n",
        dir.path().join("state").display().to_string()
    );
    let path = dir.path().join("mserver.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(env!("CARGO_BIN_EXE_mserver"))
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let _server = Proc(Some(child), false);
    until("the web port", LIMIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", webp))
            .await
            .is_ok()
    })
    .await;
    let (_driver, c) = browser().await;
    let _ = c.goto(&format!("http://127.0.0.1:{webp}/")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        c.find(Locator::Css("form#login")).await.is_err(),
        "a peer outside the allow-list got the page"
    );
    shot(&c, "allow-list-refused").await;
    let _ = c.close().await;
}

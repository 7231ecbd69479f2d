//! `lan-client`: the LAN host's traffic generator for the end-to-end tests, run inside the LAN namespace.
//! Each subcommand runs under a total timeout, prints `OK …` and exits 0 on success, or prints
//! `FAIL <subcommand>: <reason>` to stderr and exits 1. All logic lives in `masqdial_tests::lanclient`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use masqdial_tests::ftp::DataMode;
use masqdial_tests::ftp::BLOB_FILE;
use masqdial_tests::lanclient::{self, ClientError};
use masqdial_tests::wan;

/// Generates and checks traffic against `wan-servers`.
#[derive(Debug, Parser)]
#[command(name = "lan-client")]
struct Cli {
    /// Total time allowed for the whole subcommand, in seconds.
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    /// Seed of the deterministic content (must match `wan-servers --seed` for fetch and ftp-get).
    #[arg(long, default_value_t = wan::DEFAULT_SEED, global = true)]
    seed: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Send COUNT numbered datagrams to a UDP echo server and check each echo.
    UdpEcho {
        /// Server address, e.g. 203.0.113.1:7.
        addr: SocketAddr,
        /// Number of datagrams.
        #[arg(long, default_value_t = 10)]
        count: u32,
        /// Datagram size in bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Wait this long for each echo before resending, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        per_try_ms: u64,
        /// Sends per datagram before giving up.
        #[arg(long, default_value_t = 3)]
        tries: u32,
        /// Pause between datagrams, in milliseconds.
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Local UDP port (0: any).
        #[arg(long, default_value_t = 0)]
        local_port: u16,
    },
    /// Ask the UDP "who" server (blob port) which address it sees us as: `OK udp-whoami seen=… local=…`.
    UdpWhoami {
        /// Server address, e.g. 203.0.113.1:8081.
        addr: SocketAddr,
        /// Local UDP port (0: any).
        #[arg(long, default_value_t = 0)]
        local_port: u16,
        /// Wait this long for the answer before resending, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        per_try_ms: u64,
        /// Sends before giving up.
        #[arg(long, default_value_t = 3)]
        tries: u32,
    },
    /// Send BYTES deterministic bytes to a TCP echo server and check the echo.
    TcpEcho {
        /// Server address, e.g. 203.0.113.1:7.
        addr: SocketAddr,
        /// Number of bytes.
        #[arg(long)]
        bytes: usize,
    },
    /// Fetch BYTES bytes from the blob server (`GET <n>`) and check them; prints the SHA-256.
    TcpFetch {
        /// Server address, e.g. 203.0.113.1:8081.
        addr: SocketAddr,
        /// Number of bytes.
        #[arg(long)]
        bytes: u64,
    },
    /// Ask the blob server which address it sees us as (after NAT): prints `OK whoami seen=… local=…`.
    TcpWhoami {
        /// Server address, e.g. 203.0.113.1:8081.
        addr: SocketAddr,
    },
    /// Download a file over FTP and check its size and content.
    FtpGet(FtpArgs),
    /// Upload BYTES deterministic bytes over FTP, then download them back and compare.
    FtpPut(FtpArgs),
}

#[derive(Debug, ClapArgs)]
struct FtpArgs {
    /// Server address: IP (port 21) or IP:PORT.
    addr: String,
    /// Remote file name.
    #[arg(long, default_value = BLOB_FILE)]
    file: String,
    /// Expected (get) or uploaded (put) size in bytes.
    #[arg(long)]
    bytes: u64,
    /// Passive mode (PASV, or EPSV with --epsv).
    #[arg(long, conflicts_with = "active", required_unless_present = "active")]
    passive: bool,
    /// Active mode (PORT with our own address, or EPRT with --eprt).
    #[arg(long)]
    active: bool,
    /// Use EPSV instead of PASV.
    #[arg(long, requires = "passive")]
    epsv: bool,
    /// Use EPRT instead of PORT.
    #[arg(long, requires = "active")]
    eprt: bool,
}

impl FtpArgs {
    fn mode(&self) -> DataMode {
        match (self.passive, self.epsv, self.eprt) {
            (true, true, _) => DataMode::ExtendedPassive,
            (true, false, _) => DataMode::Passive,
            (false, _, true) => DataMode::ExtendedActive,
            (false, _, false) => DataMode::Active,
        }
    }

    fn server(&self) -> Result<SocketAddr, ClientError> {
        if let Ok(a) = self.addr.parse::<SocketAddr>() {
            return Ok(a);
        }
        self.addr
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, wan::FTP_PORT))
            .map_err(|_| ClientError::Mismatch(format!("bad server address {:?}", self.addr)))
    }
}

async fn run(cli: &Cli, io: Duration) -> Result<String, ClientError> {
    let seed = cli.seed;
    match &cli.cmd {
        Cmd::UdpEcho {
            addr,
            count,
            size,
            per_try_ms,
            tries,
            interval_ms,
            local_port,
        } => {
            let o = lanclient::UdpEchoOptions {
                count: *count,
                size: *size,
                per_try: Duration::from_millis(*per_try_ms),
                tries: *tries,
                interval: Duration::from_millis(*interval_ms),
                local_port: *local_port,
            };
            lanclient::udp_echo(*addr, o).await
        }
        Cmd::UdpWhoami {
            addr,
            local_port,
            per_try_ms,
            tries,
        } => {
            lanclient::udp_whoami(
                *addr,
                *local_port,
                Duration::from_millis(*per_try_ms),
                *tries,
            )
            .await
        }
        Cmd::TcpEcho { addr, bytes } => lanclient::tcp_echo(*addr, *bytes, seed, io).await,
        Cmd::TcpFetch { addr, bytes } => lanclient::tcp_fetch(*addr, *bytes, seed, io).await,
        Cmd::TcpWhoami { addr } => lanclient::tcp_whoami(*addr, io).await,
        Cmd::FtpGet(f) => {
            lanclient::ftp_get(f.server()?, &f.file, f.bytes, f.mode(), seed, io).await
        }
        Cmd::FtpPut(f) => {
            let bytes = usize::try_from(f.bytes)
                .map_err(|_| ClientError::Mismatch("upload too large".into()))?;
            lanclient::ftp_put(f.server()?, &f.file, bytes, f.mode(), seed, io).await
        }
    }
}

fn name(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::UdpEcho { .. } => "udp-echo",
        Cmd::UdpWhoami { .. } => "udp-whoami",
        Cmd::TcpEcho { .. } => "tcp-echo",
        Cmd::TcpFetch { .. } => "tcp-fetch",
        Cmd::TcpWhoami { .. } => "tcp-whoami",
        Cmd::FtpGet(_) => "ftp-get",
        Cmd::FtpPut(_) => "ftp-put",
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let total = Duration::from_secs(cli.timeout.max(1));
    // Each socket operation gets the whole budget; the total timeout below bounds the sum.
    let result = tokio::time::timeout(total, run(&cli, total)).await;
    match result {
        Ok(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("FAIL {}: {e}", name(&cli.cmd));
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "FAIL {}: total timeout of {total:?} exceeded",
                name(&cli.cmd)
            );
            ExitCode::FAILURE
        }
    }
}

//! `wan-servers`: the "internet" servers of the end-to-end tests, run inside the WAN namespace (TCP/UDP
//! echo on 7, blob on 8081, FTP on 21). Prints a line starting with `READY` once every listener is bound,
//! then serves until killed. All logic lives in `masqdial_tests::wan`; this only parses arguments.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use masqdial_tests::wan::{self, WanConfig, WanServers};

/// TCP/UDP echo, deterministic blob and FTP servers bound to one address.
#[derive(Debug, Parser)]
#[command(name = "wan-servers")]
struct Args {
    /// Address every listener binds (203.0.113.1 in the test topology).
    #[arg(long)]
    bind: IpAddr,
    /// Seed of the deterministic content (blob server and `blob.bin`).
    #[arg(long, default_value_t = wan::DEFAULT_SEED)]
    seed: u64,
    /// Size in bytes of the FTP virtual file `blob.bin`.
    #[arg(long, default_value_t = wan::DEFAULT_FTP_FILE_SIZE)]
    ftp_file_size: u64,
    /// TCP and UDP echo port.
    #[arg(long, default_value_t = wan::ECHO_PORT)]
    echo_port: u16,
    /// Blob server port.
    #[arg(long, default_value_t = wan::BLOB_PORT)]
    blob_port: u16,
    /// FTP control port.
    #[arg(long, default_value_t = wan::FTP_PORT)]
    ftp_port: u16,
    /// Idle timeout of every read or write on a connection, in seconds.
    #[arg(long, default_value_t = 30)]
    io_timeout_secs: u64,
    /// Keep retrying the binds this many seconds while the address is not yet assigned.
    #[arg(long, default_value_t = 0)]
    bind_wait_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    let mut cfg = WanConfig::new(a.bind);
    cfg.seed = a.seed;
    cfg.ftp_file_size = a.ftp_file_size;
    cfg.echo_port = a.echo_port;
    cfg.blob_port = a.blob_port;
    cfg.ftp_port = a.ftp_port;
    cfg.io_timeout = Duration::from_secs(a.io_timeout_secs.max(1));
    cfg.bind_wait = Duration::from_secs(a.bind_wait_secs);
    let servers = WanServers::bind(cfg).await.context("binding listeners")?;
    println!(
        "READY tcp-echo={} udp-echo={} blob={} ftp={}",
        servers.echo_tcp_addr()?,
        servers.echo_udp_addr()?,
        servers.blob_addr()?,
        servers.ftp_addr()?
    );
    servers.serve().await;
    Ok(())
}

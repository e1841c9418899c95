// SPDX-License-Identifier: GPL-2.0
//! zcsend-cat: send a file to a TCP host:port through /dev/zcsend.
//!
//! The file is mapped read-only (or, with --read, read into an owned buffer)
//! and sent in chunks; each chunk is a `Buf` slice that the library keeps
//! until the chunk's completion has been read. Completions are waited for with
//! poll(2) on an eventfd. With -v every completion is printed; at the end a
//! summary says how many sends went out zero-copy and how many were copied.
//!
//!   zcsend-cat [-v] FILE HOST:PORT           raw bytes, any TCP sink (nc -l)
//!   zcsend-cat --zcx FILE 10.77.0.1:7878     the samples' protocol: the
//!                                            receiver (zcsend_host_rx) checks
//!                                            every byte, FILE must hold the
//!                                            pattern stream (--make-pattern)
//!   zcsend-cat --make-pattern SIZE FILE      write such a file
//!
//! Exit status: 0 when every send completed (and, with --zcx, the receiver
//! answered OK), 1 on a failure, 2 on usage errors, 77 when /dev/zcsend is
//! missing (zcsend.ko not loaded).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::process::exit;
use std::time::{Duration, Instant};

use zcsend::{Buf, Completion, Device, EventFd, Mmap, MsgFlags};

const PROG: &str = "zcsend-cat";
const EXIT_SKIP: i32 = 77;
/// Retries of a send that failed for lack of memlock or queue room.
const RETRY_LIMIT: u32 = 1000;

/// Seed of the samples' pattern stream (`ZC_PATTERN_SEED` of tools/include/zcsend_pattern.h).
const ZCX_SEED: u64 = 0x7a63_7365_6e64;

struct Opts {
    verbose: bool,
    chunk: usize,
    read: bool,
    zcx: bool,
    seed: u64,
    label: String,
    timeout: Duration,
    file: String,
    dest: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: {PROG} [options] FILE HOST:PORT\n\
         \x20      {PROG} --make-pattern SIZE FILE [--seed HEX]\n\
         Sends FILE over TCP through /dev/zcsend, zero-copy from a read-only mapping.\n\
         \x20 -v, --verbose     print every completion\n\
         \x20 --chunk BYTES     bytes per send (default 256K; K and M suffixes)\n\
         \x20 --read            read FILE into memory instead of mapping it\n\
         \x20 --zcx             samples protocol: announce FILE as the pattern stream of\n\
         \x20                   --seed and print the verdict of zcsend_host_rx\n\
         \x20 --seed HEX        pattern seed (default {ZCX_SEED:x})\n\
         \x20 --label TEXT      name of the run in the RESULT line (default {PROG})\n\
         \x20 --timeout SECS    wait for completions and the verdict (default 30)\n\
         \x20 --make-pattern SIZE FILE\n\
         \x20                   write SIZE bytes of the pattern stream to FILE and exit\n\
         The file must not change while it is sent (it is mapped read-only)."
    );
    exit(2)
}

fn parse_size(s: &str) -> usize {
    let (num, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    match num.parse::<usize>().ok().and_then(|n| n.checked_mul(mul)) {
        Some(n) => n,
        None => usage(),
    }
}

fn parse_seed(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| usage())
}

fn parse_args() -> Opts {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        verbose: false,
        chunk: 256 << 10,
        read: false,
        zcx: false,
        seed: ZCX_SEED,
        label: PROG.into(),
        timeout: Duration::from_secs(30),
        file: String::new(),
        dest: String::new(),
    };
    let mut make: Option<(usize, String)> = None;
    let mut pos = Vec::new();
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "-v" | "--verbose" => o.verbose = true,
            "--chunk" => o.chunk = parse_size(&val()),
            "--read" => o.read = true,
            "--zcx" => o.zcx = true,
            "--seed" => o.seed = parse_seed(&val()),
            "--label" => o.label = val(),
            "--timeout" => {
                o.timeout = Duration::from_secs(val().parse().unwrap_or_else(|_| usage()))
            }
            "--make-pattern" => {
                let size = parse_size(&val());
                make = Some((size, val()));
            }
            "-h" | "--help" => usage(),
            s if s.starts_with('-') && s.len() > 1 => usage(),
            _ => pos.push(a),
        }
    }
    if let Some((size, path)) = make {
        if !pos.is_empty() {
            usage();
        }
        match make_pattern(&path, size, o.seed) {
            Ok(()) => {
                println!(
                    "{PROG}: wrote {size} pattern bytes (seed {:x}) to {path}",
                    o.seed
                );
                exit(0)
            }
            Err(e) => {
                println!("{PROG}: cannot write {path}: {e}");
                exit(1)
            }
        }
    }
    if pos.len() != 2 || o.chunk == 0 {
        usage();
    }
    o.dest = pos.pop().unwrap();
    o.file = pos.pop().unwrap();
    o
}

/// The pattern of tools/include/zcsend_pattern.h (`zc_pattern_*`;
/// samples/pattern.h before): byte `off` of the stream is byte `off % 8`,
/// least significant first, of `zcx_word(seed, off / 8)`. Checked against
/// the C code by the test `pattern_matches_c_generator`.
fn zcx_word(seed: u64, idx: u64) -> u64 {
    let mut x = seed.wrapping_add(idx.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn zcx_fill(buf: &mut [u8], seed: u64, off: u64) {
    let mut i = 0;
    while i < buf.len() {
        let o = off + i as u64;
        let word = zcx_word(seed, o >> 3).to_le_bytes();
        let skip = (o & 7) as usize;
        let n = (8 - skip).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[skip..skip + n]);
        i += n;
    }
}

fn make_pattern(path: &str, size: usize, seed: u64) -> io::Result<()> {
    let mut f = io::BufWriter::new(File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < size {
        let n = block.len().min(size - off);
        zcx_fill(&mut block[..n], seed, off as u64);
        f.write_all(&block[..n])?;
        off += n;
    }
    f.into_inner()?.sync_all()
}

fn die(msg: impl std::fmt::Display) -> ! {
    println!("{PROG}: {msg}");
    exit(1)
}

/// One send and what became of it.
#[derive(Default, Clone)]
struct Rec {
    call: Duration,
    t_call: Option<Instant>,
    done: Option<Completion>,
    latency: Duration,
}

struct Run {
    dev: Device,
    efd: EventFd,
    recs: Vec<Rec>,
    verbose: bool,
    completed: usize,
    zerocopy: usize,
    copy_path: usize,
    weird: usize,
}

impl Run {
    /// Files every completion that is there; returns how many.
    fn drain(&mut self) -> usize {
        let mut buf = [Completion::default(); 64];
        let mut got = 0;
        // Clear the eventfd first: a record posted later signals it again.
        if let Err(e) = self.efd.reset() {
            die(format!("read eventfd: {e}"));
        }
        loop {
            let n = match self.dev.try_read_completions(&mut buf) {
                Ok(0) => return got,
                Ok(n) => n,
                Err(e) => die(format!("read {}: {e}", zcsend::DEVICE_PATH)),
            };
            got += n;
            for c in &buf[..n] {
                self.file(c);
            }
        }
    }

    fn file(&mut self, c: &Completion) {
        let now = Instant::now();
        let Some(r) = self
            .recs
            .get_mut(c.user_data as usize)
            .filter(|r| r.done.is_none())
        else {
            println!("{PROG}: unexpected completion user_data={}", c.user_data);
            self.weird += 1;
            return;
        };
        r.done = Some(*c);
        r.latency = r.t_call.map_or(Duration::ZERO, |t| now - t);
        self.completed += 1;
        if c.zerocopy {
            self.zerocopy += 1;
        }
        if c.copy_path {
            self.copy_path += 1;
        }
        if c.result != 0 {
            self.weird += 1;
        }
        if self.verbose {
            println!(
                "{PROG}: completion send={} bytes={} {}{} after {}",
                c.user_data,
                c.bytes,
                if c.zerocopy { "zero-copy" } else { "copied" },
                if c.copy_path { " (copy path)" } else { "" },
                fmt_time(r.latency)
            );
        }
    }

    /// Waits up to `t` for the eventfd, then files what is there.
    fn wait(&mut self, t: Duration) -> usize {
        match self.efd.wait(Some(t)) {
            Ok(true) => self.drain(),
            Ok(false) => 0,
            Err(e) => die(format!("poll eventfd: {e}")),
        }
    }

    /// One send of `buf`, retried while the module is out of room.
    fn send(&mut self, sock: &TcpStream, buf: &Buf) -> usize {
        let mut tries = 0;
        loop {
            let id = self.recs.len() as u64;
            let t0 = Instant::now();
            match self.dev.send(
                sock.as_fd(),
                std::slice::from_ref(buf),
                MsgFlags::NOSIGNAL,
                None,
                id,
            ) {
                Ok(n) => {
                    self.recs.push(Rec {
                        call: t0.elapsed(),
                        t_call: Some(t0),
                        ..Rec::default()
                    });
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOBUFS | libc::ENOMEM | libc::EAGAIN)
                    ) && tries < RETRY_LIMIT =>
                {
                    // Too much pinned (RLIMIT_MEMLOCK) or queued: let some
                    // sends complete first.
                    tries += 1;
                    self.wait(Duration::from_millis(100));
                }
                Err(e) => die(format!("send of {} bytes: {e}", buf.len())),
            }
        }
    }
}

fn fmt_time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-5 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1e-3 {
        format!("{:.0} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn min_med_max(mut v: Vec<Duration>) -> Option<(Duration, Duration, Duration)> {
    v.sort_unstable();
    Some((*v.first()?, v[v.len() / 2], *v.last()?))
}

fn load(o: &Opts) -> io::Result<(Buf, &'static str)> {
    if o.read {
        return Ok((zcsend::read_file(&o.file)?, "read into memory"));
    }
    let f = File::open(&o.file)?;
    // SAFETY: the tool's documented contract (see --help): FILE does not
    // change while it is sent. If it did, the bytes sent would change with
    // it; the mapping is never written through.
    let m = unsafe { Mmap::map(&f)? };
    Ok((Buf::from(m), "mapped read-only"))
}

fn main() {
    let o = parse_args();

    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => {
            println!("{PROG}: cannot open {}: {e}", zcsend::DEVICE_PATH);
            println!("{PROG}: is zcsend.ko loaded?");
            println!(
                "RESULT tcp  {:<13} SKIP {} missing",
                o.label,
                zcsend::DEVICE_PATH
            );
            exit(if e.kind() == io::ErrorKind::NotFound {
                EXIT_SKIP
            } else {
                1
            });
        }
    };
    match dev.version() {
        Ok(v) if v == zcsend::ABI_VERSION => {}
        Ok(v) => die(format!(
            "{} speaks ABI {v}, this program ABI {}",
            zcsend::DEVICE_PATH,
            zcsend::ABI_VERSION
        )),
        Err(e) => die(format!("ZCSEND_IOC_VERSION: {e}")),
    }
    let efd = EventFd::new().unwrap_or_else(|e| die(format!("eventfd: {e}")));
    if let Err(e) = dev.set_eventfd(Some(efd.as_fd())) {
        die(format!("ZCSEND_IOC_SET_EVENTFD: {e}"));
    }

    let (file, how) = load(&o).unwrap_or_else(|e| die(format!("{}: {e}", o.file)));
    let addr = o
        .dest
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| die(format!("{} is not a HOST:PORT", o.dest)));
    let mut sock = TcpStream::connect(addr).unwrap_or_else(|e| {
        die(format!(
            "cannot connect to {addr}: {e} (is the receiver running?)"
        ))
    });
    if o.zcx {
        let hello = format!("ZCX1 tcp seed={:x} bytes={}\n", o.seed, file.len());
        if let Err(e) = sock.write_all(hello.as_bytes()) {
            die(format!("hello line: {e}"));
        }
    }
    println!(
        "{PROG}: {} ({} bytes, {how}) to {addr} through {}, sends of up to {} bytes",
        o.file,
        file.len(),
        zcsend::DEVICE_PATH,
        o.chunk
    );

    let mut run = Run {
        dev,
        efd,
        recs: Vec::new(),
        verbose: o.verbose,
        completed: 0,
        zerocopy: 0,
        copy_path: 0,
        weird: 0,
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut off = 0;
    while off < file.len() {
        let end = file.len().min(off + o.chunk);
        off += run.send(&sock, &file.slice(off..end));
        run.drain();
    }
    let t_sent = t0.elapsed();
    let sent_bytes = off as u64;
    // The mapping is still held by every in-flight send; ours can go.
    drop(file);

    // Every accepted send owes exactly one completion.
    let deadline = Instant::now() + o.timeout;
    while run.dev.in_flight() > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        run.wait(left);
    }
    let t_end = t0.elapsed();
    let cpu = cpu_seconds() - cpu0;

    // The verdict (or just the end of the stream).
    let _ = sock.shutdown(Shutdown::Write);
    let mut verdict = String::new();
    let mut t_verdict = None;
    if o.zcx {
        let _ = sock.set_read_timeout(Some(o.timeout));
        match BufReader::new(&mut sock).read_line(&mut verdict) {
            Ok(_) if !verdict.is_empty() => verdict = verdict.trim_end().to_string(),
            _ => verdict = "(no verdict: receiver silent)".into(),
        }
        t_verdict = Some(t0.elapsed());
    }

    // Report.
    let sends = run.recs.len();
    println!(
        "{PROG}:   sends {sends}, bytes {sent_bytes}, {:.3} s until the last send returned",
        t_sent.as_secs_f64()
    );
    if let Some((a, b, c)) = min_med_max(run.recs.iter().map(|r| r.call).collect()) {
        println!(
            "{PROG}:   time in ZCSEND_IOC_SEND: min {}, median {}, max {}",
            fmt_time(a),
            fmt_time(b),
            fmt_time(c)
        );
    }
    let copied = run.completed - run.zerocopy;
    println!(
        "{PROG}:   completions {}/{sends}: zero-copy {}, copied {copied} (copy path {}){}",
        run.completed,
        run.zerocopy,
        run.copy_path,
        if run.completed < sends {
            "  <-- MISSING"
        } else {
            ""
        }
    );
    let lat = run
        .recs
        .iter()
        .filter(|r| r.done.is_some())
        .map(|r| r.latency);
    if let Some((a, b, c)) = min_med_max(lat.collect()) {
        println!(
            "{PROG}:   send->completion: min {}, median {}, max {}",
            fmt_time(a),
            fmt_time(b),
            fmt_time(c)
        );
    }
    if let Ok(st) = run.dev.stats() {
        println!(
            "{PROG}:   module stats: sends {}, zerocopy {}, copied {}, inflight {}, pinned pages {}",
            st.sends, st.zerocopy, st.copied, st.inflight, st.pinned_pages
        );
    }
    let mbs = sent_bytes as f64 / t_end.as_secs_f64().max(1e-9) / 1e6;
    let gbcpu = if sent_bytes > 0 {
        cpu / (sent_bytes as f64 / 1e9)
    } else {
        0.0
    };
    println!(
        "{PROG}:   throughput {mbs:.1} MB/s (first send until the last completion), sender cpu {gbcpu:.2} s/GB"
    );
    let e2e = t_verdict.map(|t| sent_bytes as f64 / t.as_secs_f64().max(1e-9) / 1e6);
    if let Some(e2e) = e2e {
        println!("{PROG}:   receiver: {verdict} ({e2e:.1} MB/s end to end, until the verdict)");
    }
    println!(
        "{PROG}:   zero-copy: {}",
        if sends > 0 && run.zerocopy == sends {
            "yes, every send left from the file's own pages"
        } else if run.zerocopy > 0 {
            "partly, the stack copied some sends on this path"
        } else {
            "no, the stack copied the data on this path"
        }
    );

    let compl_ok = run.completed == sends && run.weird == 0;
    let recv_ok = !o.zcx || verdict.starts_with("OK ");
    let ok = compl_ok && recv_ok;
    // The same columns as zcsend_xfer's RESULT line (samples/run_sample.sh).
    let call_med =
        min_med_max(run.recs.iter().map(|r| r.call).collect()).map_or(Duration::ZERO, |m| m.1);
    println!(
        "RESULT {:<4} {:<13} {} {:5.2} MiB {:4} sends  zero-copy {:<7}  {:6.1} MB/s  e2e {:>5} MB/s  cpu {:6.1} s/GB  call {:>8}  {}",
        "tcp",
        o.label,
        if ok { "PASS" } else { "FAIL" },
        sent_bytes as f64 / 1048576.0,
        sends,
        format!("{}/{}", run.zerocopy, sends),
        mbs,
        e2e.map_or("-".to_string(), |v| format!("{v:.1}")),
        gbcpu,
        fmt_time(call_med),
        if o.zcx {
            format!("receiver {}", verdict.split(' ').next().unwrap_or(""))
        } else {
            "no verdict (raw stream)".to_string()
        }
    );
    exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_samples_pattern_h() {
        // zcx_word and zcx_fill of samples/pattern.h, printed by the C code.
        assert_eq!(zcx_word(ZCX_SEED, 0), 0x3965_8264_6045_303c);
        assert_eq!(zcx_word(ZCX_SEED, 1_000_000), 0x9f35_32f3_0cb9_08f5);
        let mut b = [0u8; 20];
        zcx_fill(&mut b, ZCX_SEED, 5);
        assert_eq!(
            b,
            [
                0x82, 0x65, 0x39, 0x59, 0xe5, 0x51, 0x54, 0x22, 0xda, 0x01, 0x7b, 0x62, 0xb5, 0x80,
                0x71, 0x32, 0x32, 0x3d, 0xfc, 0xbe
            ]
        );
    }

    /// The C pattern generator (tools/include/zcsend_pattern.h, or
    /// samples/pattern.h in older trees), compiled by build.rs from
    /// src/pattern_check.c.
    #[cfg(zcsend_c_pattern)]
    mod c {
        extern "C" {
            pub static zcsend_c_pattern_seed: u64;
            pub fn zcsend_c_pattern_word(seed: u64, idx: u64) -> u64;
            pub fn zcsend_c_pattern_fill(buf: *mut u8, len: usize, seed: u64, off: u64);
            pub fn zcsend_c_pattern_check(buf: *const u8, len: usize, seed: u64, off: u64)
                -> usize;
        }
    }

    /// zcx_word/zcx_fill against the C code itself (not only against values
    /// copied from it): words over seeds and block indexes (wrapping ones
    /// included), fills at every alignment and length around a block, and
    /// the C checker accepting what the Rust side wrote.
    #[cfg(zcsend_c_pattern)]
    #[test]
    fn pattern_matches_c_generator() {
        // SAFETY: a constant of pattern_check.c.
        assert_eq!(unsafe { c::zcsend_c_pattern_seed }, ZCX_SEED);
        let seeds = [0, 1, ZCX_SEED, 0x5eed_0007, u64::MAX, 0x8000_0000_0000_0000];
        let idxs = [0, 1, 2, 7, 4095, 1 << 20, 1 << 40, u64::MAX - 1, u64::MAX];
        for &seed in &seeds {
            for &idx in &idxs {
                // SAFETY: a pure function of two integers.
                let c = unsafe { c::zcsend_c_pattern_word(seed, idx) };
                assert_eq!(zcx_word(seed, idx), c, "zcx_word({seed:#x}, {idx:#x})");
            }
        }
        let offs = [0, 1, 3, 7, 8, 9, 4095, 4096, 65_533, (1 << 32) + 5, 1 << 50];
        for &seed in &seeds[..4] {
            for &off in &offs {
                for len in (0..=20).chain([63, 64, 65, 4096 + 3]) {
                    let mut rust = vec![0u8; len];
                    let mut c = vec![0xa5u8; len];
                    zcx_fill(&mut rust, seed, off);
                    // SAFETY: `len` writable bytes.
                    unsafe { c::zcsend_c_pattern_fill(c.as_mut_ptr(), len, seed, off) };
                    assert_eq!(rust, c, "zcx_fill(seed {seed:#x}, off {off}, len {len})");
                    // SAFETY: `len` readable bytes.
                    let ok = unsafe { c::zcsend_c_pattern_check(rust.as_ptr(), len, seed, off) };
                    assert_eq!(ok, len, "the C check rejects the Rust bytes");
                }
            }
        }
        // And a file as --make-pattern writes it, checked by the C side.
        let path = std::env::temp_dir().join(format!("zcsend-cat-pattern-{}", std::process::id()));
        let size = (1 << 20) + 12_345;
        make_pattern(path.to_str().unwrap(), size, ZCX_SEED).unwrap();
        let data = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(data.len(), size);
        // SAFETY: `size` readable bytes.
        let ok = unsafe { c::zcsend_c_pattern_check(data.as_ptr(), size, ZCX_SEED, 0) };
        assert_eq!(
            ok, size,
            "C check fails at byte {ok} of a --make-pattern file"
        );
        let mut flipped = data;
        flipped[777_777] ^= 1;
        // SAFETY: as above.
        let bad = unsafe { c::zcsend_c_pattern_check(flipped.as_ptr(), size, ZCX_SEED, 0) };
        assert_eq!(bad, 777_777, "the C check is blind");
    }

    /// Outside the source tree the C headers are absent: said so, as the
    /// device tests do.
    #[cfg(not(zcsend_c_pattern))]
    #[test]
    fn pattern_matches_c_generator() {
        let thread = std::thread::current();
        eprintln!(
            "SKIP {}: no C pattern header (tools/include/zcsend_pattern.h) next to the crate \
             (built outside the source tree)",
            thread.name().unwrap_or("pattern_matches_c_generator")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256K"), 256 << 10);
        assert_eq!(parse_size("8M"), 8 << 20);
        assert_eq!(parse_size("1000"), 1000);
        assert_eq!(parse_seed("0x7a6373656e64"), ZCX_SEED);
    }
}

//! `renkei-bench events`: how long one event on a patient takes to reach
//! many subscribers of that patient (issue 16, *Events*), beside a floor —
//! a minimal hand-written fan-out that does the same work: store the
//! record, decide in one statement which subscribers may read it, write one
//! audit row per delivery, send the frames.
//!
//! Setup, on a region from `generate`: a patient of the bench clinic and
//! `--members` members the bench adds to the organisations of its care
//! team (physicians, nurses, pharmacists and care managers in turn, named
//! `bench-events …`; they stay), and `--subscribers` WebSocket connections
//! spread over them, each with one `patientEvents` subscription. Each event
//! is one lab result written by the bench physician through `writeRecords`.
//! Physicians, nurses and pharmacists may read lab results and must receive
//! every event, once, with the written record's id, the patient and the
//! category; care managers may not, and must receive nothing. A warm-up
//! event, not counted, shows that every subscription is live. Any
//! deviation fails the run.
//!
//! The latency of a delivery is from the moment the write is sent (the
//! floor: the moment its event starts) to the frame's arrival. The hub's
//! resident memory is read from `/proc/<--hub-pid>/status` before the
//! subscribers connect and with all of them open. Results go to `--out DIR`
//! only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions};
use sea_orm::sqlx::{self};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
use uuid::Uuid;

use crate::generate::RegionFile;
use crate::load::{mint_for, percentile, shell_out};

const SUBSCRIBE: &str =
    "subscription($p: ID!) { patientEvents(patientId: $p) { kind patientId subjectId category } }";
const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index outcome record { id } } }";

/// Professions of the members the bench adds, in turn, and whether they may
/// read lab results (the matrix of `docs/access-policy.md`).
const PROFESSIONS: [(&str, bool); 4] = [
    ("PHYSICIAN", true),
    ("NURSE", true),
    ("PHARMACIST", true),
    ("CARE_MANAGER", false),
];

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// The running hub (base URL; `/graphql` and `/graphql/ws` are appended).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The database the hub uses (members are added to it; the floor reads it).
    #[arg(long, env = "RENKEI_DATABASE_URL")]
    pub database_url: String,
    /// The hub's HS256 secret (RENKEI_JWT_SECRET), to mint the tokens.
    #[arg(long, env = "RENKEI_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    #[arg(long, default_value = "renkei")]
    pub jwt_issuer: String,
    #[arg(long, default_value = "renkei")]
    pub jwt_audience: String,
    /// The file written by `generate`.
    #[arg(long)]
    pub region: PathBuf,
    /// Open subscriptions (one WebSocket connection each).
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,
    /// Distinct members the subscriptions are spread over.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Events measured per side (after one warm-up event).
    #[arg(long, default_value_t = 30)]
    pub events: usize,
    /// The hub's process id, to read its resident memory.
    #[arg(long)]
    pub hub_pid: Option<u32>,
    /// Folder the results are written to (never a tracked file).
    #[arg(long)]
    pub out: PathBuf,
    /// Names the results file.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Free text recorded with the results.
    #[arg(long)]
    pub note: Option<String>,
}

/// A frame that reached a subscriber: (subscriber, subject id, arrival).
struct Arrival {
    subscriber: usize,
    subject: Result<String, String>,
    at: Instant,
}

/// One side's measurements.
#[derive(Default)]
struct Side {
    /// Per delivery: milliseconds × 1,000 from the event's start.
    micros: Vec<u32>,
    /// Per event: until the last expected subscriber had it.
    last_micros: Vec<u32>,
    /// Per event (hub): the write's own response time.
    write_micros: Vec<u32>,
    failures: Vec<String>,
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    if args.subscribers == 0 || args.members == 0 || args.events == 0 {
        bail!("--subscribers, --members and --events must be positive");
    }
    let region: RegionFile = serde_json::from_slice(
        &std::fs::read(&args.region)
            .with_context(|| format!("reading {}", args.region.display()))?,
    )
    .context("parsing the region file")?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    let run_id = Utc::now().format("%Y%m%dT%H%M%S").to_string();
    // A patient of the bench clinic (its consents are network-wide).
    let patient: Uuid = sqlx::query_scalar(
        "SELECT patient_id FROM care_team_memberships WHERE organization_id = $1 AND end_date IS NULL ORDER BY patient_id LIMIT 1",
    )
    .bind(region.bench_clinic_id)
    .fetch_optional(&pool)
    .await?
    .context("the bench clinic has no patients: run `renkei-bench generate` first")?;
    let team: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT organization_id FROM care_team_memberships WHERE patient_id = $1 AND start_date <= CURRENT_DATE AND (end_date IS NULL OR end_date >= CURRENT_DATE) ORDER BY 1",
    )
    .bind(patient)
    .fetch_all(&pool)
    .await?;
    let members = add_members(&pool, &team, args.members, &run_id).await?;
    let tokens: Vec<String> = members
        .iter()
        .map(|(id, _)| mint_for(&args.jwt_secret, &args.jwt_issuer, &args.jwt_audience, *id))
        .collect::<anyhow::Result<_>>()?;
    let readers: Vec<bool> = (0..args.subscribers)
        .map(|i| members[i % members.len()].1)
        .collect();
    let expected = readers.iter().filter(|r| **r).count();
    let load_before = shell_out("cat", &["/proc/loadavg"]);

    let rss_idle = args.hub_pid.and_then(rss_kib);
    eprintln!(
        "hub: {} subscriptions of patient {patient} over {} members …",
        args.subscribers, args.members
    );
    let base = args.url.trim_end_matches('/').trim_end_matches("/graphql");
    let (tx, rx) = mpsc::unbounded_channel();
    let mut hub_tasks = Vec::new();
    for i in 0..args.subscribers {
        let socket = connect_hub(base, &tokens[i % tokens.len()], patient)
            .await
            .with_context(|| format!("subscriber {i}"))?;
        hub_tasks.push(tokio::spawn(read_hub(socket, i, tx.clone())));
    }
    drop(tx);
    let rss_open = args.hub_pid.and_then(rss_kib);
    let hub = run_hub(&args, &region, patient, &readers, rx, &run_id).await?;
    let rss_after = args.hub_pid.and_then(rss_kib);
    for t in &hub_tasks {
        t.abort();
    }

    eprintln!("floor: the same fan-out, hand-written …");
    let floor = run_floor(&args, &pool, patient, &members, &readers, &run_id).await?;

    let mut failed = Vec::new();
    for (side, s) in [("hub", &hub), ("floor", &floor)] {
        failed.extend(s.failures.iter().take(10).map(|f| format!("{side}: {f}")));
    }
    let row = |name: &str, s: &Side| {
        let mut m = s.micros.clone();
        m.sort_unstable();
        let mut last = s.last_micros.clone();
        last.sort_unstable();
        let mut w = s.write_micros.clone();
        w.sort_unstable();
        format!(
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
            s.last_micros.len(),
            s.micros.len(),
            percentile(&m, 50.0),
            percentile(&m, 99.0),
            percentile(&last, 99.0),
            // The floor has no write of its own to time.
            if w.is_empty() {
                "–".to_string()
            } else {
                format!("{:.1}", percentile(&w, 50.0))
            },
            s.failures.len()
        )
    };
    let mib = |k: Option<u64>| k.map_or("–".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
    let mut report = crate::report::heading("events", &args.label, &load_before, &pool).await;
    report.push_str(&format!(
        "- {} subscriptions of one patient over {} members ({} of whom may read lab results: {} deliveries expected per event), {} events per side after one warm-up\n",
        args.subscribers,
        members.len(),
        members.iter().filter(|m| m.1).count(),
        expected,
        args.events,
    ));
    report.push_str(&format!(
        "- hub resident memory (MiB): {} before the subscribers connected, {} with all open, {} after the events\n",
        mib(rss_idle),
        mib(rss_open),
        mib(rss_after)
    ));
    if let Some(note) = &args.note {
        report.push_str(&format!("- note: {note}\n"));
    }
    report.push_str("\n| side | events | deliveries | delivery p50 ms | delivery p99 ms | last delivery of an event, p99 ms | write's response p50 ms | failures |\n|---|--:|--:|--:|--:|--:|--:|--:|\n");
    report.push_str(&row("hub (writeRecords → patientEvents)", &hub));
    report.push('\n');
    report.push_str(&row("floor (hand-written fan-out)", &floor));
    report.push('\n');
    crate::report::finish(
        &args.out,
        &format!("events-{}-{run_id}.md", args.label),
        report,
        &failed,
    )
}

/// Adds `n` members to the care team's organisations, professions in turn:
/// (id, may read lab results).
async fn add_members(
    pool: &PgPool,
    team: &[Uuid],
    n: usize,
    run_id: &str,
) -> anyhow::Result<Vec<(Uuid, bool)>> {
    if team.is_empty() {
        bail!("the patient has no care team");
    }
    let mut out = Vec::with_capacity(n);
    let (mut ids, mut orgs, mut names, mut professions) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let (profession, reads) = PROFESSIONS[i % PROFESSIONS.len()];
        let id = Uuid::new_v4();
        ids.push(id);
        orgs.push(team[i % team.len()]);
        names.push(format!("bench-events {run_id} {i}"));
        professions.push(profession.to_string());
        out.push((id, reads));
    }
    sqlx::query(
        "INSERT INTO members (id, organization_id, name, profession, status, created_at, updated_at) \
         SELECT id, org, name, profession, 'ACTIVE', now(), now() FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS t(id, org, name, profession)",
    )
    .bind(&ids)
    .bind(&orgs)
    .bind(&names)
    .bind(&professions)
    .execute(pool)
    .await
    .context("adding the bench members")?;
    Ok(out)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` (graphql-transport-ws) as a member and subscribes to
/// the patient's events.
async fn connect_hub(base: &str, token: &str, patient: Uuid) -> anyhow::Result<Socket> {
    let ws = base.replacen("http", "ws", 1);
    let mut request = format!("{ws}/graphql/ws").into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    socket
        .send(Message::Text(
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })
                .to_string()
                .into(),
        ))
        .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t)?;
                if v["type"] == "connection_ack" {
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => bail!("no connection_ack: {other:?}"),
        }
    }
    socket
        .send(Message::Text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": { "p": patient } } })
                .to_string()
                .into(),
        ))
        .await?;
    Ok(socket)
}

/// Forwards every event frame of one hub subscriber, checked: a record
/// written on the patient, of lab results.
async fn read_hub(mut socket: Socket, i: usize, tx: mpsc::UnboundedSender<Arrival>) {
    while let Some(msg) = socket.next().await {
        let at = Instant::now();
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(frame)) => {
                let _ = tx.send(Arrival {
                    subscriber: i,
                    subject: Err(format!("connection closed: {frame:?}")),
                    at,
                });
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Arrival {
                    subscriber: i,
                    subject: Err(format!("connection failed: {e}")),
                    at,
                });
                return;
            }
        };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let subject = match v["type"].as_str() {
            Some("ping") => {
                let _ = socket
                    .send(Message::Text(json!({ "type": "pong" }).to_string().into()))
                    .await;
                continue;
            }
            Some("next") => {
                let e = &v["payload"]["data"]["patientEvents"];
                if v["payload"].get("errors").is_some()
                    || e["kind"] != "RECORD_WRITTEN"
                    || e["category"] != "LAB_RESULTS"
                {
                    Err(format!("unexpected event: {}", short(&v)))
                } else {
                    Ok(format!(
                        "{}/{}",
                        e["patientId"].as_str().unwrap_or_default(),
                        e["subjectId"].as_str().unwrap_or_default()
                    ))
                }
            }
            _ => Err(format!("unexpected message: {}", short(&v))),
        };
        if tx
            .send(Arrival {
                subscriber: i,
                subject,
                at,
            })
            .is_err()
        {
            return;
        }
    }
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}

/// Collects the arrivals of one event until every reader has it (or 10 s
/// pass), then checks that nobody else got it and nobody got it twice.
struct Collector {
    rx: mpsc::UnboundedReceiver<Arrival>,
    /// Arrivals for subjects not yet awaited (an event can outrun the
    /// write's response).
    early: Vec<Arrival>,
}

impl Collector {
    async fn await_event(
        &mut self,
        subject: &str,
        started: Instant,
        readers: &[bool],
        side: &mut Side,
        counted: bool,
    ) {
        let expected = readers.iter().filter(|r| **r).count();
        let mut got: HashMap<usize, Instant> = HashMap::new();
        let early = std::mem::take(&mut self.early);
        for a in early {
            if !consider(&a, subject, readers, &mut got, side) {
                self.early.push(a);
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while got.len() < expected {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(a)) => {
                    if !consider(&a, subject, readers, &mut got, side) {
                        self.early.push(a);
                    }
                }
                Ok(None) => {
                    side.failures.push("every subscriber is gone".into());
                    return;
                }
                Err(_) => {
                    side.failures.push(format!(
                        "{subject}: {} of {expected} readers received it within 10 s",
                        got.len()
                    ));
                    break;
                }
            }
        }
        // Late or wrong deliveries of this event show up here.
        let settle = tokio::time::Instant::now() + Duration::from_millis(50);
        while let Ok(Some(a)) = tokio::time::timeout_at(settle, self.rx.recv()).await {
            if !consider(&a, subject, readers, &mut got, side) {
                self.early.push(a);
            }
        }
        if counted {
            let micros = |at: &Instant| at.duration_since(started).as_micros() as u32;
            side.micros.extend(got.values().map(micros));
            if let Some(last) = got.values().max() {
                side.last_micros.push(micros(last));
            }
        }
    }
}

/// Counts an arrival for `subject` (or a failure); `false` when it is
/// about another event.
fn consider(
    a: &Arrival,
    subject: &str,
    readers: &[bool],
    got: &mut HashMap<usize, Instant>,
    side: &mut Side,
) -> bool {
    match &a.subject {
        Err(e) => {
            side.failures
                .push(format!("subscriber {}: {e}", a.subscriber));
            true
        }
        Ok(s) if s == subject => {
            if !readers[a.subscriber] {
                side.failures.push(format!(
                    "subscriber {} may not read lab results but received {subject}",
                    a.subscriber
                ));
            } else if got.insert(a.subscriber, a.at).is_some() {
                side.failures.push(format!(
                    "subscriber {} received {subject} twice",
                    a.subscriber
                ));
            }
            true
        }
        Ok(_) => false,
    }
}

async fn run_hub(
    args: &EventsArgs,
    region: &RegionFile,
    patient: Uuid,
    readers: &[bool],
    rx: mpsc::UnboundedReceiver<Arrival>,
    run_id: &str,
) -> anyhow::Result<Side> {
    let base = args.url.trim_end_matches('/').trim_end_matches("/graphql");
    let url = format!("{base}/graphql");
    let token = mint_for(
        &args.jwt_secret,
        &args.jwt_issuer,
        &args.jwt_audience,
        region.physician_id,
    )?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut collector = Collector { rx, early: vec![] };
    let mut side = Side::default();
    for e in 0..=args.events {
        let input = json!({ "records": [{
            "patientId": patient,
            "sourceRecordId": format!("EV{run_id}-{e}"),
            "effectiveAt": Utc::now().to_rfc3339(),
            "data": { "labResult": { "code": "3D045000001906202", "name": "HbA1c", "value": format!("{:.1}", 6.0 + e as f64 / 100.0), "unit": "%", "abnormal": "NORMAL" } }
        }]});
        let started = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "query": WRITE, "variables": { "i": input } }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let written = started.elapsed();
        let id = body["data"]["writeRecords"][0]["record"]["id"].as_str();
        let (true, Some(id)) = (status.is_success() && body.get("errors").is_none(), id) else {
            side.failures
                .push(format!("write {e}: HTTP {status}: {}", short(&body)));
            continue;
        };
        if e > 0 {
            side.write_micros.push(written.as_micros() as u32);
        }
        // The warm-up event (0) shows every subscription is live.
        collector
            .await_event(
                &format!("{patient}/{id}"),
                started,
                readers,
                &mut side,
                e > 0,
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(side)
}

/// The floor: a WebSocket server that keeps its subscribers' sockets and,
/// per event, stores the record, selects in one statement the subscribed
/// members who may read it (active, on the care team today, consent in
/// force, a profession that reads lab results), writes one audit row per
/// delivery in one statement, and sends each of them the frame.
async fn run_floor(
    args: &EventsArgs,
    pool: &PgPool,
    patient: Uuid,
    members: &[(Uuid, bool)],
    readers: &[bool],
    run_id: &str,
) -> anyhow::Result<Side> {
    let mut conn = pool.acquire().await?;
    sqlx::query("CREATE TEMP TABLE floor_records (id uuid PRIMARY KEY, patient_id uuid NOT NULL, kind text NOT NULL, data jsonb NOT NULL, recorded_at timestamptz NOT NULL)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("CREATE TEMP TABLE floor_audit (id bigserial PRIMARY KEY, member_id uuid NOT NULL, patient_id uuid NOT NULL, subject_id uuid NOT NULL, at timestamptz NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    type Sink = futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        Message,
    >;
    let sockets: Arc<Mutex<Vec<(Uuid, Sink)>>> = Arc::new(Mutex::new(Vec::new()));
    let accept = {
        let sockets = sockets.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sockets = sockets.clone();
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    let (sink, mut stream) = ws.split();
                    if let Some(Ok(Message::Text(member))) = stream.next().await
                        && let Ok(member) = member.parse::<Uuid>()
                    {
                        sockets.lock().await.push((member, sink));
                    }
                    // Keep reading so that the connection stays serviced.
                    while stream.next().await.is_some() {}
                });
            }
        })
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for i in 0..args.subscribers {
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await?;
        socket
            .send(Message::Text(
                members[i % members.len()].0.to_string().into(),
            ))
            .await?;
        clients.push(tokio::spawn(read_floor(socket, i, tx.clone())));
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sockets.lock().await.len() < args.subscribers {
        if Instant::now() > deadline {
            bail!("the floor's subscribers did not all connect");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let subscribed: Vec<Uuid> = members.iter().map(|m| m.0).collect();
    let reading_professions: Vec<String> = PROFESSIONS
        .iter()
        .filter(|p| p.1)
        .map(|p| p.0.to_string())
        .collect();
    let mut collector = Collector { rx, early: vec![] };
    let mut side = Side::default();
    for e in 0..=args.events {
        let started = Instant::now();
        let id = Uuid::now_v7();
        let data = json!({ "code": "3D045000001906202", "name": "HbA1c", "value": format!("{:.1}", 6.0 + e as f64 / 100.0), "unit": "%", "source": format!("FL{run_id}-{e}") });
        sqlx::query("INSERT INTO floor_records VALUES ($1, $2, 'LAB_RESULT', $3, now())")
            .bind(id)
            .bind(patient)
            .bind(&data)
            .execute(&mut *conn)
            .await?;
        let may_read: Vec<Uuid> = sqlx::query_scalar(
            "SELECT m.id FROM members m \
             WHERE m.id = ANY($2) AND m.status = 'ACTIVE' AND m.profession = ANY($3) \
               AND EXISTS (SELECT 1 FROM care_team_memberships c WHERE c.patient_id = $1 AND c.organization_id = m.organization_id \
                           AND c.start_date <= CURRENT_DATE AND (c.end_date IS NULL OR c.end_date >= CURRENT_DATE)) \
               AND EXISTS (SELECT 1 FROM consents k WHERE k.patient_id = $1 AND k.status = 'IN_FORCE')",
        )
        .bind(patient)
        .bind(&subscribed)
        .bind(&reading_professions)
        .fetch_all(&mut *conn)
        .await?;
        let may_read: std::collections::HashSet<Uuid> = may_read.into_iter().collect();
        let frame = json!({ "patientId": patient, "subjectId": id, "kind": "RECORD_WRITTEN", "category": "LAB_RESULTS" }).to_string();
        let mut sockets = sockets.lock().await;
        let recipients: Vec<Uuid> = sockets
            .iter()
            .filter(|(m, _)| may_read.contains(m))
            .map(|(m, _)| *m)
            .collect();
        sqlx::query("INSERT INTO floor_audit (member_id, patient_id, subject_id, at) SELECT m, $2, $3, now() FROM UNNEST($1::uuid[]) AS t(m)")
            .bind(&recipients)
            .bind(patient)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for (member, sink) in sockets.iter_mut() {
            if may_read.contains(member) {
                sink.send(Message::Text(frame.clone().into())).await?;
            }
        }
        drop(sockets);
        collector
            .await_event(
                &format!("{patient}/{id}"),
                started,
                readers,
                &mut side,
                e > 0,
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    accept.abort();
    for c in clients {
        c.abort();
    }
    Ok(side)
}

async fn read_floor(mut socket: Socket, i: usize, tx: mpsc::UnboundedSender<Arrival>) {
    while let Some(Ok(msg)) = socket.next().await {
        let at = Instant::now();
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let subject = Ok(format!(
            "{}/{}",
            v["patientId"].as_str().unwrap_or_default(),
            v["subjectId"].as_str().unwrap_or_default()
        ));
        if tx
            .send(Arrival {
                subscriber: i,
                subject,
                at,
            })
            .is_err()
        {
            return;
        }
    }
}

/// A process's resident memory (`VmRSS`), in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

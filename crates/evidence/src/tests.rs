//! The crate's rules on a real, migrated SQLite database (through libsql):
//! a scenario of events, an alert, a playbook run and a decision with two
//! approvals, packed, verified and tampered with; the audit chain walked,
//! broken and anchored; threats exported.

use std::io::{Read, Write};

use vigil_core::audit::{AuditEntry, GENESIS, chain_hash};
use vigil_core::token::{KeySet, jwks_json};
use vigil_db::Target;
use vigil_db::sql::LibsqlSql;

use crate::audit_log::{self, AuditFilter, ChainVerdict};
use crate::manifest::{self, verify_pack};
use crate::pack::{self, PackMeta};
use crate::scope::{self, SubjectKind};
use crate::signing::{ExportSigner, test_signer};
use crate::threat_export::{self, Format, ThreatFilter, safe_cell};

const T0: i64 = 1_790_000_000_000;

async fn migrated() -> (tempfile::TempDir, libsql::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Local(dir.path().join("v.db"));
    vigil_db::migrations::migrate(&target, &vigil_db::migrations::embedded())
        .await
        .unwrap();
    let conn = target.connect().await.unwrap();
    (dir, conn)
}

async fn audit(conn: &libsql::Connection, action: &str, kind: &str, id: &str, after: &str) {
    let entry = AuditEntry {
        at: T0 + 10_000,
        actor: "u-analyst".into(),
        action: action.into(),
        subject_kind: Some(kind.into()),
        subject_id: Some(id.into()),
        request_id: None,
        client_addr: None,
        before: None,
        after: Some(after.into()),
    };
    vigil_db::audit::append(conn, &entry).await.unwrap();
}

/// Alert `a1` with `events` events (and `x1` elsewhere), playbook run
/// `run1`, decision `d1` about the alert approved twice, and their audit.
async fn scenario(conn: &libsql::Connection, events: usize) {
    let mut sql = String::from(
        "INSERT INTO sensors (id, name, kind, version, created_by, created_at, updated_at)
           VALUES ('s1', 'edge', 'honeypot', 1, 'test', 0, 0);
         INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                             event_count, first_seen, last_seen, version, created_at, updated_at)
           VALUES ('a1', 'k', 'open', '198.51.100.7', 'usb_hid_injection', 's1', 'critical', 95, 3, 0, 0, 1, 1, 1);",
    );
    for i in 0..events {
        sql += &format!(
            "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip,
                source_class, dest_ip, technique, score, severity, breakdown, confidence, payload, tags, alert_id)
             VALUES ('e{i:05}', 's1', 'n{i}', {}, {}, 'usb_hid_injection', '198.51.100.7', 'public', '10.20.3.3',
                'T1200', 95, 'critical', '{{\"type\":45}}', 1.0, '{{\"username\":\"=cmd|calc\"}}', '[]', 'a1');",
            T0 + i as i64,
            T0 + i as i64 + 5
        );
    }
    sql += &format!(
        "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip,
            source_class, technique, score, severity, breakdown, confidence, payload, tags)
         VALUES ('x1', 's1', 'other', {T0}, {T0}, 'port_scan', '203.0.113.9', 'public', 'T1046', 10, 'low', '{{}}', 1.0, '{{}}', '[]');
         INSERT INTO playbook_executions (id, playbook_id, playbook_name, alert_id, mode, started_by, status,
            outcomes, started_at, finished_at)
           VALUES ('run1', 'pb1', 'usb injection', 'a1', 'automatic', 'system', 'completed', '[]', {t}, {t});
         INSERT INTO decisions (id, source, subject_kind, subject_id, action, parameters, threat_level, confidence,
            summary, rationale, evidence, priority, sla_deadline, status, version, submitted_by, created_at, updated_at,
            first_approver)
           VALUES ('d1', 'playbook:pb1', 'alert', 'a1', 'isolate_host', '{{}}', 'critical', 1.0,
            'Isolate 10.20.3.3 | now', 'USB keystroke injection', '{{}}', 1, {t}, 'authorized', 4, 'system', {t}, {t},
            'u-analyst');
         INSERT INTO decision_transitions (decision_id, at, actor, command, from_status, to_status, note)
           VALUES ('d1', {t}, 'system', 'submit', NULL, 'pending', NULL),
                  ('d1', {t1}, 'u-analyst', 'claim', 'pending', 'claimed', NULL),
                  ('d1', {t2}, 'u-analyst', 'approve', 'claimed', 'awaiting_second_approval', 'host is compromised'),
                  ('d1', {t3}, 'u-admin', 'second_approval', 'awaiting_second_approval', 'authorized', NULL);",
        t = T0 + 100,
        t1 = T0 + 200,
        t2 = T0 + 300,
        t3 = T0 + 400
    );
    conn.execute_batch(&sql).await.unwrap();
    audit(conn, "alert.opened", "alert", "a1", "{}").await;
    audit(conn, "user.created", "user", "u9", "{}").await;
    audit(
        conn,
        "playbook.executed",
        "playbook",
        "pb1",
        r#"{"id":"run1"}"#,
    )
    .await;
    audit(conn, "decision.approved", "decision", "d1", "{}").await;
}

fn meta(pack_id: &str, by: &str) -> PackMeta {
    PackMeta {
        pack_id: pack_id.into(),
        created_at: T0 + 1_000_000,
        created_by: by.into(),
        vigil_version: "0.1.0".into(),
    }
}

fn keys(signer: &ExportSigner) -> KeySet {
    KeySet::from_jwks(&jwks_json(&[signer.public_jwk()])).unwrap()
}

async fn build(
    conn: &libsql::Connection,
    kind: SubjectKind,
    id: &str,
    pack_id: &str,
) -> pack::Built {
    let db = LibsqlSql(conn);
    let subject = scope::resolve(&db, kind, id).await.unwrap().unwrap();
    pack::build(&db, &subject, &meta(pack_id, "u-analyst"), &test_signer())
        .await
        .unwrap()
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            f.read_to_end(&mut content).unwrap();
            (f.name().unwrap().to_string(), content)
        })
        .collect()
}

fn rezip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn an_alert_pack_holds_exactly_its_records_and_verifies() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 3).await;
    let built = build(&conn, SubjectKind::Alert, "a1", "p1").await;
    assert_eq!(built.events, 3);
    let files = unzip(&built.bytes);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "record.json",
            "alerts.json",
            "decisions.json",
            "playbook_executions.json",
            "audit.json",
            "events/000001-e00000.json",
            "events/000002-e00001.json",
            "events/000003-e00002.json",
            "report.md",
            "manifest.json",
            "manifest.sig"
        ]
    );
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&files.iter().find(|(n, _)| n == name).unwrap().1).unwrap()
    };
    assert_eq!(json("record.json")["id"], "a1");
    let decisions = json("decisions.json");
    assert_eq!(decisions[0]["id"], "d1");
    assert_eq!(decisions[0]["transitions"].as_array().unwrap().len(), 4);
    assert_eq!(decisions[0]["transitions"][3]["actor"], "u-admin");
    assert_eq!(json("playbook_executions.json")[0]["id"], "run1");
    // Entries about the alert, its decision and its run; not the user's.
    let audit: Vec<String> = json("audit.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        audit,
        ["alert.opened", "playbook.executed", "decision.approved"]
    );
    assert_eq!(json("events/000001-e00000.json")["alert_id"], "a1");
    let report = String::from_utf8(
        files
            .iter()
            .find(|(n, _)| n == "report.md")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert!(report.contains("# Evidence: alert `a1`"), "{report}");
    assert!(report.contains("second_approval"), "{report}");
    assert!(
        report.contains("Isolate 10.20.3.3 \\| now"),
        "pipes are escaped: {report}"
    );
    assert!(report.contains("host is compromised"), "{report}");

    let manifest: manifest::Manifest = serde_json::from_value(json("manifest.json")).unwrap();
    assert_eq!(manifest.files.len(), 9);
    assert_eq!(
        (manifest.pack_id.as_str(), manifest.kid.as_str()),
        ("p1", "export-test")
    );
    assert_eq!(built.manifest_sha256, manifest::sha256_hex(&files[9].1));
    let v = verify_pack(&built.bytes, &keys(&test_signer()));
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.files_ok, 9);
}

#[tokio::test]
async fn two_builds_have_the_same_content_byte_for_byte() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 700).await; // more than one page of events
    let a = build(&conn, SubjectKind::Alert, "a1", "p1").await;
    // Building (and auditing an export) changes nothing a pack holds.
    audit(&conn, "export.pack_created", "export_pack", "p1", "{}").await;
    let b = build(&conn, SubjectKind::Alert, "a1", "p2").await;
    assert_eq!(a.events, 700);
    assert_eq!(a.manifest.files, b.manifest.files);
    let (fa, fb) = (unzip(&a.bytes), unzip(&b.bytes));
    assert_eq!(fa[..fa.len() - 2], fb[..fb.len() - 2]);
    assert_ne!(a.manifest.pack_id, b.manifest.pack_id);
    // The same pack id, creator and time give the same ZIP, byte for byte.
    let c = build(&conn, SubjectKind::Alert, "a1", "p1").await;
    assert_eq!(a.bytes, c.bytes);
}

#[tokio::test]
async fn other_subjects_pack_what_hangs_off_them() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 2).await;
    let d = build(&conn, SubjectKind::Decision, "d1", "p").await;
    assert_eq!(d.events, 2);
    let files = unzip(&d.bytes);
    let record: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(record["transitions"].as_array().unwrap().len(), 4);
    let t = build(&conn, SubjectKind::Threat, "x1", "p").await;
    assert_eq!(t.events, 1);
    let s = build(&conn, SubjectKind::Sensor, "s1", "p").await;
    assert_eq!(s.events, 3);
    let db = LibsqlSql(&conn);
    assert!(
        scope::resolve(&db, SubjectKind::Alert, "nope")
            .await
            .unwrap()
            .is_none()
    );
    let sensor = scope::resolve(&db, SubjectKind::Sensor, "s1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sensor.count_events(&db).await.unwrap(), 3);
}

#[tokio::test]
async fn verification_fails_on_any_change() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 2).await;
    let built = build(&conn, SubjectKind::Alert, "a1", "p1").await;
    let keys = keys(&test_signer());
    let files = unzip(&built.bytes);
    assert!(verify_pack(&rezip(&files), &keys).ok());

    // One byte flipped in each file in turn.
    for i in 0..files.len() {
        let mut changed = files.clone();
        changed[i].1[0] ^= 1;
        let v = verify_pack(&rezip(&changed), &keys);
        assert!(!v.ok(), "flipping {} went unnoticed", files[i].0);
    }
    let mut removed = files.clone();
    removed.remove(2);
    let v = verify_pack(&rezip(&removed), &keys);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("decisions.json is listed but missing")),
        "{:?}",
        v.problems
    );
    let mut added = files.clone();
    added.push(("events/extra.json".into(), b"{}".to_vec()));
    let v = verify_pack(&rezip(&added), &keys);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("events/extra.json is not listed")),
        "{:?}",
        v.problems
    );
    // A signature from another pack (same key) does not fit this manifest.
    let other = build(&conn, SubjectKind::Alert, "a1", "p2").await;
    let mut swapped = files.clone();
    swapped.last_mut().unwrap().1 = unzip(&other.bytes).last().unwrap().1.clone();
    let v = verify_pack(&rezip(&swapped), &keys);
    assert!(
        v.problems.iter().any(|p| p.contains("manifest.sig")),
        "{:?}",
        v.problems
    );
    // The wrong key set.
    let stranger =
        ExportSigner::from_seed_b64("export-test", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE")
            .unwrap();
    assert!(!verify_pack(&built.bytes, &self::keys(&stranger)).ok());
    assert!(!verify_pack(b"not a zip", &keys).ok());
}

#[tokio::test]
async fn the_audit_chain_is_exported_walked_and_anchored() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 1).await;
    let db = LibsqlSql(&conn);
    let mut out = Vec::new();
    let n = audit_log::export_jsonl(&db, &AuditFilter::default(), &mut out, keep)
        .await
        .unwrap();
    assert_eq!(n, 4);
    let lines: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines[0]["prev_hash"], GENESIS);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    // A line is enough to recompute its hash.
    let entry: AuditEntry = AuditEntry {
        at: lines[1]["at"].as_i64().unwrap(),
        actor: lines[1]["actor"].as_str().unwrap().into(),
        action: lines[1]["action"].as_str().unwrap().into(),
        subject_kind: lines[1]["subject_kind"].as_str().map(Into::into),
        subject_id: lines[1]["subject_id"].as_str().map(Into::into),
        request_id: None,
        client_addr: None,
        before: None,
        after: lines[1]["after"].as_str().map(Into::into),
    };
    assert_eq!(
        chain_hash(lines[0]["hash"].as_str().unwrap(), &entry),
        lines[1]["hash"]
    );
    let filter =
        AuditFilter::parse(|n| (n == "action").then(|| "decision.approved".to_string())).unwrap();
    assert_eq!(filter.count(&db).await.unwrap(), 1);
    assert!(AuditFilter::parse(|n| (n == "from").then(|| "yesterday".to_string())).is_err());

    let head = audit_log::head(&db).await.unwrap().unwrap();
    assert_eq!(
        audit_log::verify(&db).await.unwrap(),
        ChainVerdict::Ok {
            entries: 4,
            head: Some(audit_log::HeadRef {
                id: head.id,
                hash: head.hash.clone()
            })
        }
    );
    let signer = test_signer();
    let jws = signer.sign_jws(&head);
    let anchor = audit_log::read_anchor(&jws, Some(&keys(&signer))).unwrap();
    assert_eq!(anchor, head);
    audit_log::check_anchor(
        &anchor,
        audit_log::hash_at(&db, anchor.id).await.unwrap().as_deref(),
    )
    .unwrap();

    // Someone with write access edits entry 2 and recomputes nothing.
    conn.execute_batch(
        "DROP TRIGGER audit_log_is_append_only_update; DROP TRIGGER audit_log_is_append_only_delete;
         UPDATE audit_log SET actor = 'mallory' WHERE id = 2;",
    )
    .await
    .unwrap();
    match audit_log::verify(&db).await.unwrap() {
        ChainVerdict::Broken {
            id,
            entries_checked,
            expected,
            actual,
            ..
        } => {
            assert_eq!((id, entries_checked), (2, 1));
            assert_ne!(expected, actual);
        }
        ok => panic!("{ok:?}"),
    }
    // Truncation: the chain that is left is intact, but the anchor is gone.
    conn.execute_batch("UPDATE audit_log SET actor = 'u-analyst' WHERE id = 2; DELETE FROM audit_log WHERE id >= 3;")
        .await
        .unwrap();
    assert!(matches!(
        audit_log::verify(&db).await.unwrap(),
        ChainVerdict::Ok { entries: 2, .. }
    ));
    let gone = audit_log::check_anchor(
        &anchor,
        audit_log::hash_at(&db, anchor.id).await.unwrap().as_deref(),
    );
    assert!(gone.unwrap_err().contains("truncated"));
    assert!(
        audit_log::check_anchor(&anchor, Some("0"))
            .unwrap_err()
            .contains("rewritten")
    );
    // A head signed by another key is refused.
    let stranger =
        ExportSigner::from_seed_b64("export-test", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE")
            .unwrap();
    assert!(audit_log::read_anchor(&stranger.sign_jws(&head), Some(&keys(&signer))).is_err());
}

/// An export's flush that keeps every page in the buffer (the whole export in memory).
fn keep(_: &mut Vec<u8>) -> Result<(), vigil_core::ApiError> {
    Ok(())
}

#[tokio::test]
async fn threats_export_as_csv_jsonl_and_stix() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 3).await;
    let db = LibsqlSql(&conn);
    let all = ThreatFilter::default();
    assert_eq!(all.count(&db).await.unwrap(), 4);
    let mut csv = Vec::new();
    assert_eq!(
        threat_export::export(&db, &all, Format::Csv, "bundle--x", &mut csv, keep)
            .await
            .unwrap(),
        4
    );
    let text = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().len(),
        threat_export::CSV_HEADER.len()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    // The hostile payload is one quoted cell that a spreadsheet shows as text.
    assert!(rows.iter().all(|r| !r[20].starts_with('=')));
    assert_eq!(safe_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
    for hostile in ["+1", "-1", "@SUM(1)", "\tx", "\rx"] {
        assert!(safe_cell(hostile).starts_with('\''));
    }
    assert_eq!(safe_cell("198.51.100.7"), "198.51.100.7");

    let only =
        ThreatFilter::parse(|n| (n == "event_type").then(|| "port_scan".to_string())).unwrap();
    let mut jsonl = Vec::new();
    assert_eq!(
        threat_export::export(&db, &only, Format::Jsonl, "", &mut jsonl, keep)
            .await
            .unwrap(),
        1
    );
    let line: serde_json::Value =
        serde_json::from_slice(jsonl.strip_suffix(b"\n").unwrap()).unwrap();
    assert_eq!(line["id"], "x1");
    assert!(ThreatFilter::parse(|n| (n == "severity").then(|| "dire".to_string())).is_err());
    assert_eq!(
        Format::parse(Some("xml")).unwrap_err().errors[0].field,
        "format"
    );

    let mut stix = Vec::new();
    threat_export::export(
        &db,
        &all,
        Format::Stix,
        "bundle--6ba7b810-9dad-41d1-80b4-00c04fd430c8",
        &mut stix,
        keep,
    )
    .await
    .unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&stix).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let of = |t: &str| objects.iter().filter(|o| o["type"] == t).count();
    assert_eq!(
        (
            of("ipv4-addr"),
            of("indicator"),
            of("observed-data"),
            of("sighting")
        ),
        (2, 2, 4, 4)
    );
    assert_eq!((of("attack-pattern"), of("relationship")), (2, 2));
    let pattern = objects
        .iter()
        .find(|o| {
            o["type"] == "attack-pattern" && o["external_references"][0]["external_id"] == "T1200"
        })
        .unwrap();
    assert_eq!(pattern["name"], "Hardware Additions");
    let ids: std::collections::BTreeSet<&str> =
        objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), objects.len(), "ids are unique");
    for o in objects {
        for r in [
            "sighting_of_ref",
            "source_ref",
            "target_ref",
            "created_by_ref",
        ] {
            if let Some(target) = o[r].as_str() {
                assert!(ids.contains(target), "{r} {target} dangles");
            }
        }
    }
}

#[tokio::test]
async fn a_streamed_export_sends_the_same_bytes_as_one_in_memory() {
    let (_dir, conn) = migrated().await;
    scenario(&conn, 3).await;
    let db = LibsqlSql(&conn);
    let all = ThreatFilter::default();
    for format in [Format::Csv, Format::Jsonl, Format::Stix] {
        let mut whole = Vec::new();
        threat_export::export(&db, &all, format, "bundle--x", &mut whole, keep)
            .await
            .unwrap();
        let (mut buffer, mut sent) = (Vec::new(), Vec::new());
        threat_export::export(&db, &all, format, "bundle--x", &mut buffer, |page| {
            sent.append(page);
            Ok(())
        })
        .await
        .unwrap();
        assert!(buffer.is_empty(), "every page was handed on");
        assert_eq!(sent, whole);
    }
    let mut sent = 0;
    let refused = audit_log::export_jsonl(&db, &AuditFilter::default(), &mut Vec::new(), |page| {
        sent += page.len();
        Err(vigil_core::ApiError::new(499, "client-closed", "gone"))
    })
    .await;
    assert!(
        refused.is_err() && sent > 0,
        "a failed send stops the export"
    );
}

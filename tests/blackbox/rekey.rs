//! Key rotation (issue 16): `mb-2fa-store rekey`, `--prepare`, `--finish`.
//! Codes are computed by oathtool (or the kit's RFC 6238 reference), never
//! by the code under test; key files are compared byte for byte.

use std::path::{Path, PathBuf};

use mb2fa_testkit::{AUDIT, Enrolled, Env, LIST, STORE, VERIFY, mode, oathtool, write_key_file};
use serde_json::Value;

const A: &str = "alice@example.com";
const B: &str = "bob@example.com";

fn sibling(key: &Path, suffix: &str) -> PathBuf {
    let mut s = key.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// alice active, bob pending.
fn two_accounts(env: &Env) -> (Enrolled, Enrolled) {
    let alice = env.enroll(A);
    env.activate(&alice);
    let bob = env.enroll(B);
    (alice, bob)
}

/// The account's secret opens and a code computed from it matches
/// (`--diagnose`: nothing is spent, so it can be asked again).
#[track_caller]
fn opens(env: &Env, key_file: Option<&Path>, e: &Enrolled) -> Run2 {
    let mut args: Vec<String> = vec![
        "--json".into(),
        "--email".into(),
        e.email.clone(),
        "--code".into(),
        oathtool(&e.secret, 0),
        "--diagnose".into(),
    ];
    if let Some(k) = key_file {
        args.extend(["--key-file".into(), k.display().to_string()]);
    }
    let run = env.run(VERIFY, &args);
    let doc = run.ok_json();
    let f = doc["finding"].as_str().unwrap_or("").to_string();
    assert!(
        f == "valid" || f == "already_used",
        "{}: {f}\n{run}",
        e.email
    );
    Run2 {
        stderr: run.stderr.clone(),
    }
}

struct Run2 {
    stderr: String,
}

fn audit_of(env: &Env, action: &str) -> Vec<Value> {
    env.audit(Vec::<&str>::new())
        .into_iter()
        .filter(|r| r["action"] == action)
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn rekey_reseals_every_secret_and_finish_retires_the_old_key() {
    let env = Env::new();
    let (alice, bob) = two_accounts(&env);
    let old_key = read(&env.key);
    let new_path = sibling(&env.key, ".new");
    let old_path = sibling(&env.key, ".old");

    let doc = env.run(STORE, ["rekey", "--json"]).ok_json();
    assert_eq!(doc["resealed"], 2, "{doc}");
    assert_eq!(doc["resumed"], false, "{doc}");
    let (old_fp, new_fp) = (
        doc["old_fingerprint"].as_str().expect("old").to_string(),
        doc["new_fingerprint"].as_str().expect("new").to_string(),
    );
    assert_ne!(old_fp, new_fp);
    // The new key in place, the old one beside it, both 0400.
    let new_key = read(&env.key);
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, old_key);
    assert_eq!(read(&old_path), old_key);
    assert_eq!(mode(&env.key), 0o400);
    assert_eq!(mode(&old_path), 0o400);
    assert!(!new_path.exists());

    // Existing enrollments keep working: a new code for alice, bob's first.
    let run = env.verify_json(A, &oathtool(&alice.secret, 1));
    run.ok_json();
    let run = env.verify_json(B, &oathtool(&bob.secret, 0));
    assert_eq!(run.ok_json()["activated"], true, "{run}");
    assert!(run.stderr.is_empty(), "no note in the usual case\n{run}");

    // A second rekey before --finish is refused, nothing changed.
    let run = env.run(STORE, ["rekey", "--json"]);
    let msg = run.fail_json(5, "conflict");
    assert!(msg.contains("rekey --finish"), "{msg}");
    assert_eq!(read(&env.key), new_key);
    assert_eq!(read(&old_path), old_key);

    // Check shows the rotation as unfinished (a warning, not a failure).
    let run = env.run(STORE, ["check"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("WARN rotation") && l.contains(&old_fp) && l.contains(&new_fp)),
        "{run}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok   key") && l.contains(&new_fp)),
        "{run}"
    );

    let doc = env.run(STORE, ["rekey", "--finish", "--json"]).ok_json();
    assert_eq!(doc["retired_fingerprint"], old_fp.as_str(), "{doc}");
    assert_eq!(doc["removed_old_key_file"], true, "{doc}");
    assert_eq!(doc["secrets_checked"], 2, "{doc}");
    assert!(!old_path.exists());
    assert_eq!(read(&env.key), new_key);
    // Finishing again is harmless.
    let doc = env.run(STORE, ["rekey", "--finish", "--json"]).ok_json();
    assert_eq!(doc["retired_fingerprint"], Value::Null, "{doc}");
    opens(&env, None, &alice);
    opens(&env, None, &bob);

    // Both steps audited, with fingerprints and never key bytes.
    let rekeys = audit_of(&env, "rekey");
    assert_eq!(rekeys.len(), 1, "{rekeys:?}");
    let detail = rekeys[0]["detail"].as_str().expect("detail");
    assert!(detail.contains(&old_fp) && detail.contains(&new_fp) && detail.contains("2 secret"));
    assert_eq!(rekeys[0]["outcome"], "ok");
    let finishes = audit_of(&env, "rekey-finish");
    assert_eq!(finishes.len(), 1, "{finishes:?}");
    assert!(finishes[0]["detail"].as_str().expect("d").contains(&old_fp));
    let all = env.run(AUDIT, ["--json"]);
    for k in [&old_key, &new_key] {
        all.assert_not_echoed(&hex(k));
    }

    // The old key alone no longer opens the store: exit 10 naming the fix.
    write_key_file(&env.key, &old_key, 0o400);
    let run = env.run(
        VERIFY,
        ["--email", A, "--code", &oathtool(&alice.secret, 0)],
    );
    let line = run.fail_line(10, VERIFY, "previous key");
    assert!(line.contains("copy the new key file"), "{line}");
    let run = env.run(LIST, ["--json"]);
    run.ok_json(); // list needs no key
    let run = env.run(STORE, ["check"]);
    run.expect_code(10);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL key") && l.contains(&new_fp)),
        "{run}"
    );
}

#[test]
fn rekey_is_refused_when_the_key_does_not_open_the_store() {
    let env = Env::new();
    two_accounts(&env);
    let before = read(&env.key);
    write_key_file(&env.key, &[7u8; 32], 0o400);
    let run = env.run(STORE, ["rekey"]);
    run.fail_line(10, STORE, "is not the key of");
    assert!(!sibling(&env.key, ".new").exists(), "no key made");
    assert!(!sibling(&env.key, ".old").exists());
    write_key_file(&env.key, &before, 0o400);
    let run = env.run(STORE, ["rekey", "--finish"]);
    run.expect_code(0);
}

#[test]
fn an_interrupted_rekey_is_resumed_with_its_key_not_a_third_one() {
    let env = Env::new();
    let (alice, bob) = two_accounts(&env);
    let new_path = sibling(&env.key, ".new");
    let old_path = sibling(&env.key, ".old");
    let first = read(&env.key);

    // Killed after step 1 (--prepare is step 1 alone): the store is as it
    // was; the next rekey uses the prepared key.
    let doc = env.run(STORE, ["rekey", "--prepare", "--json"]).ok_json();
    let prepared_fp = doc["new_fingerprint"].as_str().expect("fp").to_string();
    let prepared = read(&new_path);
    assert_eq!(mode(&new_path), 0o400);
    assert_eq!(read(&env.key), first);
    let o = opens(&env, None, &alice);
    assert!(
        o.stderr.is_empty(),
        "the store still uses the key file: {}",
        o.stderr
    );
    let run = env.run(STORE, ["check"]);
    assert!(run.stdout.contains("prepared key"), "{run}");
    let doc = env.run(STORE, ["rekey", "--json"]).ok_json();
    assert_eq!(doc["new_fingerprint"], prepared_fp.as_str(), "{doc}");
    assert_eq!(doc["resumed"], true, "{doc}");
    assert_eq!(doc["resealed"], 2, "{doc}");
    assert_eq!(read(&env.key), prepared);
    assert_eq!(read(&old_path), first);

    // Killed after the commit, before the files moved: put them back as
    // they were then (2fa.key the old key, 2fa.key.new the new, no .old).
    std::fs::rename(&env.key, &new_path).expect("mv");
    std::fs::rename(&old_path, &env.key).expect("mv");
    for e in [&alice, &bob] {
        let o = opens(&env, None, e);
        assert!(
            o.stderr.contains("2fa.key.new") && o.stderr.contains("mb-2fa-store rekey"),
            "a note says which key was used: {}",
            o.stderr
        );
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    }
    let run = env.run(STORE, ["check"]);
    run.expect_code(0);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("WARN key")),
        "{run}"
    );
    // --finish refuses: the old key is still the key file.
    let run = env.run(STORE, ["rekey", "--finish"]);
    run.fail_line(5, STORE, "run mb-2fa-store rekey first");
    assert!(new_path.exists());
    let doc = env.run(STORE, ["rekey", "--json"]).ok_json();
    assert_eq!(doc["resealed"], Value::Null, "{doc}");
    assert_eq!(doc["resumed"], true, "{doc}");
    assert_eq!(read(&env.key), prepared);
    assert_eq!(read(&old_path), first);
    assert!(!new_path.exists());
    for p in [&env.key, &old_path] {
        assert_eq!(mode(p), 0o400, "{}", p.display());
    }
    // Only one re-seal was recorded: no third key.
    assert_eq!(audit_of(&env, "rekey").len(), 1);
    let keys = std::fs::read_dir(env.key.parent().expect("dir"))
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".2fa.key.new-"))
        .count();
    assert_eq!(keys, 2, "2fa.key and 2fa.key.old only");
    env.run(STORE, ["rekey", "--finish"]).expect_code(0);
    opens(&env, None, &alice);
    opens(&env, None, &bob);
}

/// A copy of the database (an SQLite backup) made with `VACUUM INTO`.
fn backup_db(env: &Env, to: &Path) {
    let conn = env.connect();
    conn.execute("VACUUM INTO ?1", [to.display().to_string()])
        .expect("vacuum into");
    mb2fa_testkit::chmod(to, 0o600);
}

fn restore_db(env: &Env, from: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(mb2fa_testkit::with_suffix(&env.db, suffix));
    }
    std::fs::copy(from, &env.db).expect("restore");
    mb2fa_testkit::chmod(&env.db, 0o600);
}

#[test]
fn a_copy_from_before_the_rotation_still_opens_and_is_resealed_on_request() {
    let env = Env::new();
    let (alice, bob) = two_accounts(&env);
    let pre_db = env.path("pre.db");
    backup_db(&env, &pre_db);
    let pre_key = read(&env.key);
    env.run(STORE, ["rekey"]).expect_code(0);

    // The old database with the old key alone: nothing was re-sealed
    // outside the rotation's transaction, so it opens as it did.
    let copy = Env::new();
    std::fs::copy(&pre_db, &copy.db).expect("copy");
    mb2fa_testkit::chmod(&copy.db, 0o600);
    write_key_file(&copy.key, &pre_key, 0o400);
    opens(&copy, None, &alice);
    opens(&copy, None, &bob);
    copy.run(STORE, ["check"]).expect_code(0);

    // Restored in place before --finish: the tools open it with
    // 2fa.key.old (and say so); rekey re-seals it with 2fa.key.
    restore_db(&env, &pre_db);
    let o = opens(&env, None, &alice);
    assert!(o.stderr.contains("2fa.key.old"), "{}", o.stderr);
    let run = env.run(STORE, ["rekey", "--finish"]);
    run.fail_line(5, STORE, "previous key");
    let doc = env.run(STORE, ["rekey", "--json"]).ok_json();
    assert_eq!(doc["resealed"], 2, "{doc}");
    let o = opens(&env, None, &bob);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    env.run(STORE, ["rekey", "--finish"]).expect_code(0);
    opens(&env, None, &alice);
}

#[test]
fn finish_is_refused_while_a_secret_still_needs_the_old_key() {
    let env = Env::new();
    let (alice, _bob) = two_accounts(&env);
    let old_path = sibling(&env.key, ".old");
    let sealed_old = env.stored_secret(A);
    env.run(STORE, ["rekey"]).expect_code(0);
    // A secret sealed with the old key (a database writer's doing, or a
    // half-restored row) must keep the old key.
    env.connect()
        .execute(
            "UPDATE accounts SET secret = ?1 WHERE email = ?2",
            rusqlite::params![sealed_old, A],
        )
        .expect("plant");
    let run = env.run(STORE, ["rekey", "--finish"]);
    let line = run.fail_line(10, STORE, "does not open");
    assert!(line.contains("alice@example.com"), "{line}");
    assert!(old_path.exists(), "the old key is kept");
    let run = env.run(STORE, ["rekey", "--finish", "--json"]);
    run.fail_json(10, "storage");
    // Put the right row back (re-sealed by a re-enrollment) and finish.
    env.run(mb2fa_testkit::DISABLE, ["--json", "--yes", "--email", A])
        .ok_json();
    let again = env.enroll(A);
    assert_ne!(again.secret, alice.secret);
    env.run(STORE, ["rekey", "--finish"]).expect_code(0);
    assert!(!old_path.exists());
}

/// Two nodes sharing one store, each with its own key file.
struct Node {
    key: PathBuf,
}

impl Node {
    fn args(&self, rest: &[&str]) -> Vec<String> {
        let mut v = vec!["--key-file".to_string(), self.key.display().to_string()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }
}

#[test]
fn a_node_is_told_which_key_it_holds_and_the_prepared_order_keeps_it_working() {
    let env = Env::new();
    let (alice, bob) = two_accounts(&env);
    let node_b = Node {
        key: env.path("node-b/2fa.key"),
    };
    write_key_file(&node_b.key, &read(&env.key), 0o400);

    // The simple order: rekey on A; B, with the old key only, fails
    // closed and is told to copy the new key, and check says what it holds.
    env.run(STORE, ["rekey"]).expect_code(0);
    let code = oathtool(&alice.secret, 0);
    let run = env.run(VERIFY, node_b.args(&["--email", A, "--code", &code]));
    let line = run.fail_line(10, VERIFY, "copy the new key file");
    assert!(!line.contains("not enrolled"), "{line}");
    let run = env.run(STORE, node_b.args(&["check"]));
    run.expect_code(10);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL key") && l.contains("previous key")),
        "{run}"
    );
    // Copy the new key (and the old) to B: it works again.
    write_key_file(&node_b.key, &read(&env.key), 0o400);
    write_key_file(
        &sibling(&node_b.key, ".old"),
        &read(&sibling(&env.key, ".old")),
        0o400,
    );
    env.run(STORE, node_b.args(&["check"])).expect_code(0);
    opens(&env, Some(&node_b.key), &bob);
    env.run(STORE, ["rekey", "--finish"]).expect_code(0);
    // B's own 2fa.key.old is its --finish's to remove.
    let run = env.run(STORE, node_b.args(&["check"]));
    assert!(run.stdout.contains("no longer needed"), "{run}");
    let doc = env
        .run(STORE, node_b.args(&["rekey", "--finish", "--json"]))
        .ok_json();
    assert_eq!(doc["removed_old_key_file"], true, "{doc}");
    assert!(!sibling(&node_b.key, ".old").exists());

    // The prepared order: the next key reaches B before anything is
    // sealed with it, so B never stops working.
    let doc = env.run(STORE, ["rekey", "--prepare", "--json"]).ok_json();
    let next_fp = doc["new_fingerprint"].as_str().expect("fp").to_string();
    write_key_file(
        &sibling(&node_b.key, ".new"),
        &read(&sibling(&env.key, ".new")),
        0o400,
    );
    env.run(STORE, ["rekey"]).expect_code(0);
    let o = opens(&env, Some(&node_b.key), &alice);
    assert!(o.stderr.contains("2fa.key.new"), "{}", o.stderr);
    let doc = env.run(STORE, node_b.args(&["rekey", "--json"])).ok_json();
    assert_eq!(
        doc["resealed"],
        Value::Null,
        "B only moves its files: {doc}"
    );
    assert_eq!(doc["new_fingerprint"], next_fp.as_str());
    assert_eq!(read(&node_b.key), read(&env.key));
    let o = opens(&env, Some(&node_b.key), &bob);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    env.run(STORE, ["rekey", "--finish"]).expect_code(0);
    env.run(STORE, node_b.args(&["rekey", "--finish"]))
        .expect_code(0);
    assert_eq!(audit_of(&env, "rekey").len(), 2);
}

/// A temporary key file `name` in the key's directory, 0400, written
/// `age_secs` ago: what a run killed while writing `2fa.key.new` leaves.
fn leftover(env: &Env, name: &str, age_secs: u64) -> PathBuf {
    let p = env.key.parent().expect("key dir").join(name);
    write_key_file(&p, &[9u8; 32], 0o400);
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
    std::fs::File::open(&p)
        .expect("open")
        .set_modified(t)
        .expect("mtime");
    p
}

fn removed(doc: &Value) -> Vec<String> {
    doc["removed_temporary_files"]
        .as_array()
        .unwrap_or_else(|| panic!("no removed_temporary_files: {doc}"))
        .iter()
        .map(|v| v.as_str().expect("path").to_string())
        .collect()
}

/// Leftover `.2fa.key.new-XXXXXX` files of killed runs are removed by the
/// next `rekey --prepare`, `rekey` and `rekey --finish` that succeeds, and
/// named in its answer; a young one (maybe another run's, being written),
/// a symlink of that name and other names stay; a refused run removes
/// nothing.
#[test]
fn leftover_temporary_key_files_are_removed_by_the_next_rekey() {
    let env = Env::new();
    let (alice, _bob) = two_accounts(&env);
    let dir = env.key.parent().expect("key dir").to_path_buf();
    let old = leftover(&env, ".2fa.key.new-Ab12Cd", 3600);
    let young = leftover(&env, ".2fa.key.new-young1", 0);
    let other = leftover(&env, "2fa.key.new-Ab12Cd", 3600);
    let target = dir.join("not-a-key");
    std::fs::write(&target, b"keep").expect("write");
    let link = dir.join(".2fa.key.new-link01");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let doc = env.run(STORE, ["rekey", "--prepare", "--json"]).ok_json();
    assert_eq!(removed(&doc), [old.display().to_string()], "{doc}");
    assert!(!old.exists() && young.exists() && other.exists());
    assert!(std::fs::symlink_metadata(&link).is_ok() && target.exists());
    let again = leftover(&env, ".2fa.key.new-ZZ99zz", 120);
    // A refused run changes nothing, leftovers included.
    let stray = sibling(&env.key, ".old");
    write_key_file(&stray, &[5u8; 32], 0o400);
    env.run(STORE, ["rekey"])
        .fail_line(5, STORE, "remove it first");
    assert!(again.exists());
    std::fs::remove_file(&stray).expect("rm");
    let doc = env.run(STORE, ["rekey", "--json"]).ok_json();
    assert_eq!(removed(&doc), [again.display().to_string()], "{doc}");
    let later = leftover(&env, ".2fa.key.new-000000", 61);
    let doc = env.run(STORE, ["rekey", "--finish", "--json"]).ok_json();
    assert_eq!(removed(&doc), [later.display().to_string()], "{doc}");
    let text = {
        let l = leftover(&env, ".2fa.key.new-111111", 3600);
        let run = env.run(STORE, ["rekey", "--finish"]);
        run.expect_code(0);
        assert!(!l.exists());
        run.stdout.clone()
    };
    assert!(
        text.contains("Removed 1 leftover temporary key file(s) of an interrupted run"),
        "{text}"
    );
    assert!(young.exists() && other.exists() && target.exists());
    opens(&env, None, &alice);
}

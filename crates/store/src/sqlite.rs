//! The default durable backend: one SQLite file in WAL mode, kine-style.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::backend::{Backend, Batch, Change, Loaded, LoadedObject};
use crate::StoreError;

const SCHEMA_VERSION: i64 = 1;

// WITHOUT ROWID: the key is the primary key and the only lookup, so the table *is* the index.
// `value` is TEXT (not BLOB) so `sqlite3 state.db "select json_extract(value, '$.spec')..."`
// works for whoever inspects a node.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES ('revision', 0);
";

/// The store's state in `DIR/state.db`: table `objects(key, value, create_rev, mod_rev)` holds
/// the live objects (deletes remove the row) and `meta` holds the current `revision`, so
/// revisions are never reused across restarts.
///
/// WAL mode with `synchronous=FULL`: every commit is fsynced before the store acknowledges
/// it, so acknowledged writes survive `kill -9` and power loss. A lock on `DIR/LOCK` keeps a
/// second process (or a second `Store` in this one) from opening the same directory.
#[derive(Debug)]
pub struct SqliteBackend {
    conn: Connection,
    path: PathBuf,
    // Held for its lock; released when the backend is dropped.
    _lock: File,
}

impl SqliteBackend {
    /// Open (creating if needed) `dir/state.db`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        let io = |what: &str, e: std::io::Error| {
            StoreError::Backend(format!("{what} {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| io("opening the lock file in", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Backend(format!(
                    "{} is in use by another store",
                    dir.display()
                )))
            }
            Err(TryLockError::Error(e)) => return Err(io("locking", e)),
        }
        let path = dir.join("state.db");
        let conn = Connection::open(&path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{}: cannot switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Someone inspecting the file with sqlite3 may briefly hold a lock a checkpoint needs.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE name = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta(name, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(StoreError::Backend(format!(
                    "{}: schema version {v} is newer than this binary's {SCHEMA_VERSION}",
                    path.display()
                )))
            }
        }
        Ok(SqliteBackend {
            conn,
            path,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn to_revision(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Backend(format!("negative revision {v} in state.db")))
}

fn to_sql(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("revision {v} too large")))
}

impl Backend for SqliteBackend {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let tx = self.conn.transaction()?;
        let revision: i64 =
            tx.query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
                r.get(0)
            })?;
        let mut objects = Vec::new();
        {
            let mut stmt = tx.prepare("SELECT key, value, create_rev, mod_rev FROM objects")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                objects.push(LoadedObject {
                    key: row.get(0)?,
                    json: row.get(1)?,
                    create_revision: to_revision(row.get(2)?)?,
                    mod_revision: to_revision(row.get(3)?)?,
                });
            }
        }
        tx.commit()?;
        Ok(Loaded {
            revision: to_revision(revision)?,
            objects,
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        // Dropping `tx` on an early return rolls the whole batch back.
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO objects(key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM objects WHERE key = ?1")?;
            for change in &batch.changes {
                match change {
                    Change::Put {
                        key,
                        json,
                        create_revision,
                        mod_revision,
                    } => {
                        put.execute(params![
                            &**key,
                            json,
                            to_sql(*create_revision)?,
                            to_sql(*mod_revision)?
                        ])?;
                    }
                    Change::Delete { key, .. } => {
                        delete.execute([&**key])?;
                    }
                }
            }
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                .execute([to_sql(batch.revision)?])?;
        }
        tx.commit()?;
        Ok(())
    }
}

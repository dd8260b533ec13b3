//! Background rows: the pictures ("fonds") the admin uploads for the touchscreen app.
//! The image files live beside the catalog (`backgrounds/{id}.jpg` and its thumbnail);
//! a row is inserted only once both files are durable, and removed before its files.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::CatalogError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackgroundRow {
    pub seq: i64,
    pub id: String,
    pub name: String,
    pub position: i64,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub sha256: String,
    pub created_ms: i64,
}

/// What a new background brings; `seq` is the catalog's.
#[derive(Debug, Clone)]
pub struct NewBackground {
    pub id: String,
    pub name: String,
    /// `None`: after the last one.
    pub position: Option<i64>,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub sha256: String,
    pub created_ms: i64,
}

const COLUMNS: &str = "seq, id, name, position, bytes, width, height, sha256, created_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<BackgroundRow> {
    Ok(BackgroundRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        position: r.get(3)?,
        bytes: r.get(4)?,
        width: r.get(5)?,
        height: r.get(6)?,
        sha256: r.get(7)?,
        created_ms: r.get(8)?,
    })
}

pub fn insert_background(
    conn: &Connection,
    b: &NewBackground,
) -> Result<BackgroundRow, CatalogError> {
    let position = match b.position {
        Some(p) => p,
        None => conn.query_row(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM backgrounds",
            [],
            |r| r.get(0),
        )?,
    };
    conn.execute(
        "INSERT INTO backgrounds (id, name, position, bytes, width, height, sha256, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            b.id,
            b.name,
            position,
            b.bytes,
            b.width,
            b.height,
            b.sha256,
            b.created_ms
        ],
    )?;
    Ok(BackgroundRow {
        seq: conn.last_insert_rowid(),
        id: b.id.clone(),
        name: b.name.clone(),
        position,
        bytes: b.bytes,
        width: b.width,
        height: b.height,
        sha256: b.sha256.clone(),
        created_ms: b.created_ms,
    })
}

/// Every background, in the order the app shows them.
pub fn list_backgrounds(conn: &Connection) -> Result<Vec<BackgroundRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM backgrounds ORDER BY position, name, seq"
    ))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn get_background(conn: &Connection, id: &str) -> Result<Option<BackgroundRow>, CatalogError> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM backgrounds WHERE id = ?1"))?;
    Ok(st.query_row([id], from_row).optional()?)
}

/// Renames and/or moves a background; `None` when there is no such background.
pub fn update_background(
    conn: &Connection,
    id: &str,
    name: Option<&str>,
    position: Option<i64>,
) -> Result<Option<BackgroundRow>, CatalogError> {
    conn.execute(
        "UPDATE backgrounds SET name = COALESCE(?2, name), position = COALESCE(?3, position)
         WHERE id = ?1",
        params![id, name, position],
    )?;
    get_background(conn, id)
}

pub fn delete_background_row(conn: &Connection, id: &str) -> Result<bool, CatalogError> {
    Ok(conn.execute("DELETE FROM backgrounds WHERE id = ?1", [id])? > 0)
}

/// Every background id (start-up reconciliation of the files).
pub fn all_background_ids(conn: &Connection) -> Result<Vec<String>, CatalogError> {
    let mut st = conn.prepare_cached("SELECT id FROM backgrounds")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
